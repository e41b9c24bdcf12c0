//! The Batch tab's MI network: computed in the background from a folder of images, drawn as
//! thumbnails joined by the edges the DPI keeps (width by MI, the reference framed), beside
//! the MI matrix as a heatmap. A click on a node makes it the batch's reference; a button
//! chains the folder in the recovered order.

use super::batch_panel::BatchSource;
use super::file_chooser::{self, Request};
use crate::batch::manifest;
use crate::batch::network::{Network, NetworkOptions, network_of_files};
use crate::compose::heat_colour;
use crate::job::{JobHandle, Waker};
use eframe::egui;
use std::path::PathBuf;

/// The network's state in the Batch tab.
#[derive(Default)]
pub struct NetworkView {
    /// The folder and its images, in file-name order (the network's indices).
    pub images: Vec<PathBuf>,
    folder: Option<PathBuf>,
    job: Option<JobHandle<Network>>,
    fraction: f32,
    /// The last network computed.
    pub network: Option<Network>,
    /// Its thumbnails, uploaded on first draw.
    thumbnails: Vec<egui::TextureHandle>,
    error: Option<String>,
}

/// Side of the graph drawing, points.
const GRAPH_SIDE: f32 = 360.0;

impl NetworkView {
    /// Starts computing the network of `folder`'s images.
    pub fn start(&mut self, folder: PathBuf, waker: Option<Waker>) {
        self.error = None;
        self.network = None;
        self.thumbnails.clear();
        match manifest::list_images(&folder) {
            Ok(images) => {
                let paths = images.clone();
                let job = JobHandle::spawn_woken("alinify-network", waker, move |reporter| {
                    network_of_files(&paths, &NetworkOptions::default(), reporter)
                });
                match job {
                    Ok(job) => {
                        self.images = images;
                        self.folder = Some(folder);
                        self.job = Some(job);
                        self.fraction = 0.0;
                    }
                    Err(e) => self.error = Some(format!("cannot start the network: {e}")),
                }
            }
            Err(e) => self.error = Some(e.to_string()),
        }
    }

    /// Takes the job's news.
    fn poll(&mut self) {
        let Some(job) = &self.job else {
            return;
        };
        let mut fraction = self.fraction;
        let done = job.drain(|event| {
            if let crate::job::Event::Progress(p) = event {
                fraction = p.fraction;
            }
        });
        self.fraction = fraction;
        match done {
            None => {}
            Some(Ok(network)) => {
                self.network = Some(network);
                self.job = None;
            }
            Some(Err(e)) => {
                self.error = Some(e.to_string());
                self.job = None;
            }
        }
    }

    /// The section; returns a batch source when the person picks a reference or the order.
    pub fn show(
        &mut self,
        ui: &mut egui::Ui,
        idle: bool,
        waker: Option<Waker>,
    ) -> Option<BatchSource> {
        self.poll();
        let mut chosen = None;
        egui::CollapsingHeader::new("MI network (reference and order)")
            .default_open(self.network.is_some() || self.job.is_some())
            .show(ui, |ui| {
                ui.horizontal(|ui| {
                    let clicked = ui
                        .add_enabled(idle && self.job.is_none(), egui::Button::new("Network of a folder…"))
                        .on_hover_text("mutual information between every pair of images (ARACNe-AP's adaptive partitioning), pruned by the DPI")
                        .clicked();
                    if let Some(dir) = file_chooser::choose_one(ui.ctx(), clicked, "network folder", || {
                        Request::folder("Folder of images (serial sections, scans)")
                    }) {
                        self.start(dir, waker.clone());
                    }
                    if let Some(job) = &self.job {
                        ui.add(egui::ProgressBar::new(self.fraction).desired_width(160.0).text("computing…"));
                        if ui.button("Cancel").clicked() {
                            job.cancel.cancel();
                        }
                    }
                });
                if let Some(e) = &self.error {
                    ui.colored_label(ui.visuals().error_fg_color, e);
                }
                if self.network.is_some() {
                    chosen = self.network_ui(ui, idle);
                }
            });
        chosen
    }

    fn network_ui(&mut self, ui: &mut egui::Ui, idle: bool) -> Option<BatchSource> {
        let network = self.network.as_ref()?;
        let names = &network.names;
        ui.label(format!(
            "{} images · {} edges kept · reference {} · order {:?} (confidence {:.2})",
            names.len(),
            network.edges.len(),
            names[network.reference],
            network.order.method,
            network.order.confidence
        ));
        if self.thumbnails.len() != network.grids.len() {
            self.thumbnails = network
                .grids
                .iter()
                .enumerate()
                .map(|(i, g)| {
                    ui.ctx()
                        .load_texture(format!("network {i}"), thumbnail(g), Default::default())
                })
                .collect();
        }
        let mut chosen = None;
        ui.horizontal_top(|ui| {
            if let Some(i) = graph(ui, network, &self.thumbnails)
                && idle
                && let Some(folder) = &self.folder
            {
                chosen = Some(BatchSource::Reference {
                    fixed: self.images[i].clone(),
                    moving_dir: folder.clone(),
                });
            }
            heatmap(ui, network);
        });
        ui.horizontal(|ui| {
            if ui
                .add_enabled(idle, egui::Button::new("Reference batch"))
                .on_hover_text("every image against the network's reference (or click a node)")
                .clicked()
                && let Some(folder) = &self.folder
            {
                chosen = Some(BatchSource::Reference {
                    fixed: self.images[network.reference].clone(),
                    moving_dir: folder.clone(),
                });
            }
            if ui
                .add_enabled(idle, egui::Button::new("Chain in this order"))
                .on_hover_text("each image against its neighbour in the recovered order")
                .clicked()
            {
                chosen = Some(BatchSource::Series(
                    network
                        .order
                        .order
                        .iter()
                        .map(|&i| self.images[i].clone())
                        .collect(),
                ));
            }
        });
        chosen
    }
}

/// A grid image as a gray texture, stretched between its extremes.
fn thumbnail(grid: &crate::raster::GrayF32) -> egui::ColorImage {
    let (h, w) = grid.dim();
    egui::ColorImage::from_gray([w, h], &crate::analysis::render::stretched_gray(grid))
}

/// The graph: nodes around a circle in the series order, edges by MI; returns the node
/// clicked.
fn graph(
    ui: &mut egui::Ui,
    network: &Network,
    thumbnails: &[egui::TextureHandle],
) -> Option<usize> {
    let (rect, response) =
        ui.allocate_exact_size(egui::vec2(GRAPH_SIDE, GRAPH_SIDE), egui::Sense::click());
    let painter = ui.painter_at(rect);
    painter.rect_filled(rect, 4.0, ui.visuals().extreme_bg_color);
    let n = network.names.len();
    let centre = rect.center();
    let radius = GRAPH_SIDE * 0.38;
    let side = (std::f32::consts::TAU * radius / n as f32 * 0.6).clamp(14.0, 56.0);
    let mut at = vec![centre; n];
    for (k, &i) in network.order.order.iter().enumerate() {
        let angle = std::f32::consts::TAU * k as f32 / n as f32 - std::f32::consts::FRAC_PI_2;
        at[i] = centre + radius * egui::vec2(angle.cos(), angle.sin());
    }
    let strongest = network.edges.iter().map(|e| e.mi).fold(1e-9, f64::max);
    let edge_colour = egui::Color32::from_rgb(70, 140, 230);
    for e in &network.edges {
        let width = 1.0 + 6.0 * (e.mi / strongest) as f32;
        painter.line_segment([at[e.a], at[e.b]], egui::Stroke::new(width, edge_colour));
    }
    let hovered = response.hover_pos();
    let mut under = None;
    for (i, texture) in thumbnails.iter().enumerate() {
        let node = egui::Rect::from_center_size(at[i], egui::vec2(side, side));
        painter.image(
            texture.id(),
            node,
            egui::Rect::from_min_max(egui::pos2(0.0, 0.0), egui::pos2(1.0, 1.0)),
            egui::Color32::WHITE,
        );
        let (colour, width) = if i == network.reference {
            (egui::Color32::from_rgb(240, 140, 40), 3.0)
        } else {
            (egui::Color32::GRAY, 1.0)
        };
        painter.rect_stroke(
            node,
            0.0,
            egui::Stroke::new(width, colour),
            egui::StrokeKind::Outside,
        );
        if hovered.is_some_and(|p| node.contains(p)) {
            under = Some(i);
        }
    }
    let response = match under {
        Some(i) => response.on_hover_text(format!(
            "{}: click to make it the reference",
            network.names[i]
        )),
        None => response,
    };
    under.filter(|_| response.clicked())
}

/// The MI matrix as a heatmap (rows and columns in the series order), the value under the
/// cursor.
fn heatmap(ui: &mut egui::Ui, network: &Network) {
    let n = network.names.len();
    let (rect, response) =
        ui.allocate_exact_size(egui::vec2(GRAPH_SIDE, GRAPH_SIDE), egui::Sense::hover());
    let painter = ui.painter_at(rect);
    let cell = GRAPH_SIDE / n as f32;
    let order = &network.order.order;
    let strongest = network.mi.iter().flatten().copied().fold(1e-9, f64::max);
    for (r, &i) in order.iter().enumerate() {
        for (c, &j) in order.iter().enumerate() {
            let t = (network.mi[i][j] / strongest) as f32;
            let [red, green, blue] = heat_colour(t).map(|v| (v * 255.0) as u8);
            let min = rect.min + egui::vec2(c as f32 * cell, r as f32 * cell);
            painter.rect_filled(
                egui::Rect::from_min_size(min, egui::vec2(cell, cell)),
                0.0,
                egui::Color32::from_rgb(red, green, blue),
            );
        }
    }
    if let Some(p) = response.hover_pos() {
        let (c, r) = (
            ((p.x - rect.min.x) / cell) as usize,
            ((p.y - rect.min.y) / cell) as usize,
        );
        if r < n && c < n {
            let (i, j) = (order[r], order[c]);
            response.on_hover_text(format!(
                "{} · {}: MI {:.4} nats",
                network.names[i], network.names[j], network.mi[i][j]
            ));
        }
    }
}
