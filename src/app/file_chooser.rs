//! The in-window file chooser, for every open and save: a path field (typed paths, `~`,
//! relative to the folder shown), the folder's listing with a filter, the recent folders, and
//! a button for the system dialog. It always opens: the system dialog (rfd) needs a desktop
//! portal on Linux, and plain X11 window managers, remote sessions and clusters' visualisation
//! nodes have none, where rfd silently returns nothing.
//!
//! Immediate mode: a call site asks [`choose`] every frame with its own id; the chooser opens
//! when asked to and the call returns the chosen paths in the frame they are confirmed.

use eframe::egui;
use std::path::{Path, PathBuf};

/// Image files the app reads.
pub const IMAGES: &[&str] = &["tif", "tiff", "png", "jpg", "jpeg"];

/// The listing's height in points (it scrolls beyond).
const LISTING_HEIGHT: f32 = 260.0;

/// How many recent folders are kept.
const RECENT_FOLDERS: usize = 8;

/// What may be chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pick {
    /// One file.
    File,
    /// One or more files (Ctrl-click adds to the selection).
    Files,
    /// One folder.
    Folder,
}

/// What a chooser asks for: its title, what may be chosen and the file filters offered.
#[derive(Debug, Clone)]
pub struct Request {
    /// The window's title: what the choice is for.
    pub title: String,
    /// File, files or folder.
    pub pick: Pick,
    /// Named lists of extensions (without the dot); "all files" is always offered after them.
    pub filters: Vec<(String, Vec<String>)>,
}

impl Request {
    /// One file, for `title`.
    pub fn file(title: impl Into<String>) -> Self {
        Self::new(title, Pick::File)
    }

    /// Several files, for `title`.
    pub fn files(title: impl Into<String>) -> Self {
        Self::new(title, Pick::Files)
    }

    /// A folder, for `title`.
    pub fn folder(title: impl Into<String>) -> Self {
        Self::new(title, Pick::Folder)
    }

    fn new(title: impl Into<String>, pick: Pick) -> Self {
        Self {
            title: title.into(),
            pick,
            filters: Vec::new(),
        }
    }

    /// Adds a filter: files whose extension is one of `extensions` (any case).
    pub fn filter(mut self, name: &str, extensions: &[&str]) -> Self {
        self.filters.push((
            name.to_owned(),
            extensions.iter().map(|e| e.to_string()).collect(),
        ));
        self
    }
}

/// The recently used folders, most recent first, kept between launches.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
struct RecentFolders(Vec<PathBuf>);

fn recent_id() -> egui::Id {
    egui::Id::unique("alinify-recent-folders")
}

fn chooser_id(id: &str) -> egui::Id {
    egui::Id::unique(("alinify-file-chooser", id))
}

/// Opens chooser `id` with `request` (shown by the next [`choose`] with the same id). The
/// chooser starts in the most recent folder, else the working folder.
pub fn open(ctx: &egui::Context, id: &str, request: Request) {
    let dir = ctx
        .data_mut(|d| d.get_persisted::<RecentFolders>(recent_id()))
        .and_then(|r| r.0.into_iter().find(|p| p.is_dir()))
        .or_else(|| std::env::current_dir().ok())
        .unwrap_or_else(|| PathBuf::from("/"));
    let state = Chooser::new(request, dir);
    ctx.data_mut(|d| d.insert_temp(chooser_id(id), state));
}

/// Whether chooser `id` is open.
pub fn is_open(ctx: &egui::Context, id: &str) -> bool {
    ctx.data(|d| d.get_temp::<Chooser>(chooser_id(id)).is_some())
}

/// Chooser `id`: opened with `request()` when `open_now`, drawn while open, and the chosen
/// paths in the frame they are confirmed (then it closes).
pub fn choose(
    ctx: &egui::Context,
    open_now: bool,
    id: &str,
    request: impl FnOnce() -> Request,
) -> Option<Vec<PathBuf>> {
    if open_now {
        open(ctx, id, request());
    }
    chosen(ctx, id)
}

/// Draws chooser `id` while it is open; the chosen paths in the frame they are confirmed.
pub fn chosen(ctx: &egui::Context, id: &str) -> Option<Vec<PathBuf>> {
    let key = chooser_id(id);
    let mut chooser = ctx.data_mut(|d| {
        let chooser = d.get_temp::<Chooser>(key);
        d.remove::<Chooser>(key);
        chooser
    })?;
    match chooser.show(ctx, key) {
        Outcome::Open => {
            ctx.data_mut(|d| d.insert_temp(key, chooser));
            None
        }
        Outcome::Cancelled => None,
        Outcome::Chosen(paths) => {
            remember_folder(ctx, &paths);
            Some(paths)
        }
    }
}

/// [`choose`] for one path.
pub fn choose_one(
    ctx: &egui::Context,
    open_now: bool,
    id: &str,
    request: impl FnOnce() -> Request,
) -> Option<PathBuf> {
    choose(ctx, open_now, id, request).and_then(|paths| paths.into_iter().next())
}

/// [`chosen`] for one path.
pub fn chosen_one(ctx: &egui::Context, id: &str) -> Option<PathBuf> {
    chosen(ctx, id).and_then(|paths| paths.into_iter().next())
}

/// Puts the folder of the first chosen path first in the recent folders.
fn remember_folder(ctx: &egui::Context, paths: &[PathBuf]) {
    let Some(first) = paths.first() else { return };
    let folder = match first.is_dir() {
        true => first.clone(),
        false => first
            .parent()
            .map_or_else(|| first.clone(), Path::to_path_buf),
    };
    ctx.data_mut(|d| {
        let recent = d.get_persisted_mut_or_default::<RecentFolders>(recent_id());
        recent.0.retain(|p| p != &folder);
        recent.0.insert(0, folder);
        recent.0.truncate(RECENT_FOLDERS);
    });
}

/// One row of a folder's listing.
#[derive(Debug, Clone)]
struct Entry {
    name: String,
    is_dir: bool,
}

/// What a frame of the chooser ended with.
enum Outcome {
    Open,
    Cancelled,
    Chosen(Vec<PathBuf>),
}

/// An open chooser's state.
#[derive(Debug, Clone)]
struct Chooser {
    request: Request,
    /// The folder listed.
    dir: PathBuf,
    /// The path field.
    typed: String,
    /// The chosen filter (`request.filters.len()`: all files).
    filter: usize,
    show_hidden: bool,
    selected: Vec<PathBuf>,
    /// The listing of `dir` under the filter, or why it could not be read.
    listing: Result<Vec<Entry>, String>,
    /// A problem with the last attempt (a typed path that does not exist, …).
    message: Option<String>,
    /// The path field takes the keyboard in the first frame.
    focus_field: bool,
}

impl Chooser {
    fn new(request: Request, dir: PathBuf) -> Self {
        let mut chooser = Self {
            request,
            dir,
            typed: String::new(),
            filter: 0,
            show_hidden: false,
            selected: Vec::new(),
            listing: Ok(Vec::new()),
            message: None,
            focus_field: true,
        };
        chooser.relist();
        chooser
    }

    /// Shows the folder `dir`.
    fn go(&mut self, dir: PathBuf) {
        self.dir = dir;
        self.selected.clear();
        self.message = None;
        self.focus_field = true;
        self.relist();
    }

    fn relist(&mut self) {
        let extensions = self.request.filters.get(self.filter).map(|(_, e)| e);
        let shows = |entry: &Entry| {
            (self.show_hidden || !entry.name.starts_with('.'))
                && (entry.is_dir
                    || self.request.pick != Pick::Folder
                        && extensions.is_none_or(|exts| has_extension(&entry.name, exts)))
        };
        self.listing = std::fs::read_dir(&self.dir)
            .map_err(|e| format!("cannot list {}: {e}", self.dir.display()))
            .map(|read| {
                let mut entries: Vec<Entry> = read
                    .filter_map(|entry| entry.ok())
                    .map(|entry| Entry {
                        name: entry.file_name().to_string_lossy().into_owned(),
                        // Follows links, so a link to a folder opens like one.
                        is_dir: entry.path().is_dir(),
                    })
                    .filter(shows)
                    .collect();
                entries.sort_by_key(|e| (!e.is_dir, e.name.to_lowercase()));
                entries
            });
    }

    /// The typed path, resolved: `~` is the home folder, a relative path is in `dir`.
    fn typed_path(&self) -> Option<PathBuf> {
        let text = self.typed.trim();
        if text.is_empty() {
            return None;
        }
        let path = match text.strip_prefix('~') {
            Some(rest) if rest.is_empty() || rest.starts_with('/') => {
                home_dir().join(rest.trim_start_matches('/'))
            }
            _ => PathBuf::from(text),
        };
        Some(match path.is_absolute() {
            true => path,
            false => self.dir.join(path),
        })
    }

    /// Enter in the path field, or the confirm button: a folder is entered (or, when a folder
    /// is asked for, chosen by the button); a file is chosen; anything else says why not.
    fn submit(&mut self, from_button: bool) -> Outcome {
        if let Some(path) = self.typed_path() {
            self.typed.clear();
            if path.is_dir() {
                if from_button && self.request.pick == Pick::Folder {
                    return Outcome::Chosen(vec![path]);
                }
                self.go(path);
                return Outcome::Open;
            }
            let new_folder = !path.exists() && path.parent().is_some_and(Path::is_dir);
            return match (self.request.pick, path.is_file()) {
                // A folder to write into may be new: whoever writes makes it.
                (Pick::Folder, _) if new_folder => Outcome::Chosen(vec![path]),
                (Pick::Folder, _) => self.problem(format!("{} is not a folder", path.display())),
                (_, true) => Outcome::Chosen(vec![path]),
                (_, false) => self.problem(format!("no such file: {}", path.display())),
            };
        }
        match self.request.pick {
            Pick::Folder => Outcome::Chosen(vec![
                self.selected.first().cloned().unwrap_or(self.dir.clone()),
            ]),
            _ if self.selected.is_empty() => {
                self.problem("choose a file in the list or type its path".into())
            }
            _ => Outcome::Chosen(self.selected.clone()),
        }
    }

    /// Says what is wrong, and gives the path field the keyboard back for another try.
    fn problem(&mut self, message: String) -> Outcome {
        self.message = Some(message);
        self.focus_field = true;
        Outcome::Open
    }

    /// The system dialog (rfd), in this chooser's folder; nothing chosen keeps this open.
    fn system_dialog(&mut self) -> Outcome {
        let mut dialog = rfd::FileDialog::new()
            .set_title(&self.request.title)
            .set_directory(&self.dir);
        for (name, extensions) in &self.request.filters {
            dialog = dialog.add_filter(name, extensions);
        }
        let chosen = match self.request.pick {
            Pick::File => dialog.pick_file().map(|p| vec![p]),
            Pick::Files => dialog.pick_files(),
            Pick::Folder => dialog.pick_folder().map(|p| vec![p]),
        };
        match chosen {
            Some(paths) if !paths.is_empty() => Outcome::Chosen(paths),
            _ => self.problem(
                "the system dialog did not open (without a desktop portal it cannot) or was \
                 closed without a choice: choose here instead"
                    .into(),
            ),
        }
    }

    fn show(&mut self, ctx: &egui::Context, id: egui::Id) -> Outcome {
        let mut outcome = Outcome::Open;
        let mut open = true;
        egui::Window::new(self.request.title.clone())
            .id(id.with("window"))
            .open(&mut open)
            .collapsible(false)
            .pivot(egui::Align2::CENTER_CENTER)
            .default_pos(ctx.content_rect().center())
            .default_width(620.0)
            .resizable(false)
            .show(ctx, |ui| outcome = self.contents(ui));
        match open {
            true => outcome,
            false => Outcome::Cancelled,
        }
    }

    fn field_hint(&self) -> &'static str {
        match self.request.pick {
            Pick::Folder => {
                "type a folder's path (an existing one, or a new one to make) and press Enter"
            }
            Pick::File | Pick::Files => {
                "type a path (absolute, ~/…, or in this folder) and press Enter"
            }
        }
    }

    fn contents(&mut self, ui: &mut egui::Ui) -> Outcome {
        let mut outcome = Outcome::Open;
        ui.horizontal(|ui| {
            let parent = self.dir.parent().map(Path::to_path_buf);
            if ui
                .add_enabled(parent.is_some(), egui::Button::new("Up"))
                .on_hover_text("the parent folder")
                .clicked()
                && let Some(parent) = parent
            {
                self.go(parent);
            }
            ui.label(format!("in {}", self.dir.display()));
        });
        let hint = self.field_hint();
        let field = ui.add(
            egui::TextEdit::singleline(&mut self.typed)
                .hint_text(hint)
                .desired_width(f32::INFINITY),
        );
        if std::mem::take(&mut self.focus_field) {
            field.request_focus();
        }
        if field.lost_focus() && ui.input(|i| i.key_pressed(egui::Key::Enter)) {
            outcome = self.submit(false);
        }
        ui.horizontal_top(|ui| {
            ui.vertical(|ui| {
                ui.set_width(150.0);
                self.places(ui);
            });
            ui.add_space(8.0);
            ui.vertical(|ui| {
                if let Some(chosen) = self.listing(ui) {
                    outcome = chosen;
                }
            });
        });
        ui.separator();
        ui.horizontal(|ui| {
            if self.request.pick != Pick::Folder {
                let names: Vec<String> = self
                    .request
                    .filters
                    .iter()
                    .map(|(name, exts)| format!("{name} ({})", exts.join(", ")))
                    .chain(["all files".to_string()])
                    .collect();
                let before = self.filter;
                egui::ComboBox::from_label("show")
                    .selected_text(names[self.filter.min(names.len() - 1)].clone())
                    .show_ui(ui, |ui| {
                        for (i, name) in names.iter().enumerate() {
                            ui.selectable_value(&mut self.filter, i, name);
                        }
                    });
                if self.filter != before {
                    self.relist();
                }
            }
            if ui.checkbox(&mut self.show_hidden, "hidden").changed() {
                self.relist();
            }
        });
        if let Some(message) = &self.message {
            ui.colored_label(ui.visuals().error_fg_color, message);
        }
        ui.horizontal(|ui| {
            let confirm = match self.request.pick {
                Pick::Folder => "Choose this folder",
                Pick::File | Pick::Files => "Open",
            };
            if ui.button(confirm).clicked() {
                outcome = self.submit(true);
            }
            if ui.button("Cancel").clicked() {
                outcome = Outcome::Cancelled;
            }
            if ui
                .button("System dialog…")
                .on_hover_text("the desktop's own dialog, where one opens")
                .clicked()
            {
                outcome = self.system_dialog();
            }
        });
        outcome
    }

    /// Home, the working folder and the recent folders.
    fn places(&mut self, ui: &mut egui::Ui) {
        let recent = ui
            .ctx()
            .data_mut(|d| d.get_persisted::<RecentFolders>(recent_id()))
            .unwrap_or_default();
        let mut places = vec![("home".to_string(), home_dir())];
        if let Ok(cwd) = std::env::current_dir() {
            places.push(("working folder".to_string(), cwd));
        }
        ui.strong("Places");
        let mut go = None;
        for (name, path) in &places {
            if ui
                .selectable_label(&self.dir == path, name)
                .on_hover_text(path.display().to_string())
                .clicked()
            {
                go = Some(path.clone());
            }
        }
        if !recent.0.is_empty() {
            ui.add_space(4.0);
            ui.strong("Recent folders");
            for path in &recent.0 {
                let name = super::file_name(path);
                if ui
                    .selectable_label(&self.dir == path, name)
                    .on_hover_text(path.display().to_string())
                    .clicked()
                {
                    go = Some(path.clone());
                }
            }
        }
        if let Some(dir) = go {
            self.go(dir);
        }
    }

    /// The folder's entries: a click selects (Ctrl-click adds, for several files), a double
    /// click opens a folder or chooses a file.
    fn listing(&mut self, ui: &mut egui::Ui) -> Option<Outcome> {
        let entries = match &self.listing {
            Ok(entries) => entries.clone(),
            Err(e) => {
                ui.colored_label(ui.visuals().error_fg_color, e);
                return None;
            }
        };
        if entries.is_empty() {
            ui.weak("(nothing here to choose)");
        }
        let mut clicked = None;
        egui::ScrollArea::vertical()
            .max_height(LISTING_HEIGHT)
            .min_scrolled_height(LISTING_HEIGHT)
            .auto_shrink([false, false])
            .show(ui, |ui| {
                for entry in &entries {
                    let path = self.dir.join(&entry.name);
                    let label = match entry.is_dir {
                        true => format!("{}/", entry.name),
                        false => entry.name.clone(),
                    };
                    let response = ui.selectable_label(self.selected.contains(&path), label);
                    if response.double_clicked() {
                        clicked = Some((path, entry.is_dir, true));
                    } else if response.clicked() {
                        clicked = Some((path, entry.is_dir, false));
                    }
                }
            });
        let (path, is_dir, double) = clicked?;
        let adding = self.request.pick == Pick::Files && ui.input(|i| i.modifiers.command);
        match (is_dir, double) {
            // A folder opens on a double click, or on one when files are asked for.
            (true, true) => self.go(path),
            (true, false) if self.request.pick != Pick::Folder => self.go(path),
            (false, true) => return Some(Outcome::Chosen(vec![path])),
            _ if adding => match self.selected.iter().position(|p| p == &path) {
                Some(i) => {
                    self.selected.remove(i);
                }
                None => self.selected.push(path),
            },
            _ => self.selected = vec![path],
        }
        None
    }
}

/// Whether `name` ends in one of `extensions` (any case).
fn has_extension(name: &str, extensions: &[String]) -> bool {
    Path::new(name)
        .extension()
        .is_some_and(|e| extensions.iter().any(|x| e.eq_ignore_ascii_case(x)))
}

fn home_dir() -> PathBuf {
    std::env::var_os("HOME").map_or_else(|| PathBuf::from("/"), PathBuf::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chooser(dir: &Path, request: Request) -> Chooser {
        Chooser::new(request, dir.to_path_buf())
    }

    /// The paths an outcome chose; `otherwise` when it chose none.
    fn chosen(outcome: Outcome, otherwise: &str) -> Vec<PathBuf> {
        match outcome {
            Outcome::Chosen(paths) => paths,
            _ => panic!("{otherwise}"),
        }
    }

    #[test]
    fn the_listing_shows_folders_first_and_files_under_the_filter() {
        let dir = tempfile::tempdir().unwrap();
        for name in ["b.tif", "a.PNG", "notes.txt", ".hidden.tif"] {
            std::fs::write(dir.path().join(name), b"x").unwrap();
        }
        std::fs::create_dir(dir.path().join("z-folder")).unwrap();
        let mut c = chooser(dir.path(), Request::file("t").filter("images", IMAGES));
        let names = |c: &Chooser| -> Vec<String> {
            c.listing
                .as_ref()
                .unwrap()
                .iter()
                .map(|e| e.name.clone())
                .collect()
        };
        assert_eq!(names(&c), ["z-folder", "a.PNG", "b.tif"]);
        c.filter = 1; // all files
        c.show_hidden = true;
        c.relist();
        assert_eq!(
            names(&c),
            ["z-folder", ".hidden.tif", "a.PNG", "b.tif", "notes.txt"]
        );
        let folders = chooser(dir.path(), Request::folder("t"));
        assert_eq!(names(&folders), ["z-folder"]);
    }

    #[test]
    fn a_typed_path_enters_a_folder_chooses_a_file_or_says_what_is_wrong() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        std::fs::write(dir.path().join("sub/f.tif"), b"x").unwrap();
        let mut c = chooser(dir.path(), Request::file("t"));
        c.typed = "sub".into();
        assert!(matches!(c.submit(false), Outcome::Open));
        assert_eq!(c.dir, dir.path().join("sub"));
        c.typed = "f.tif".into();
        assert_eq!(
            chosen(c.submit(false), "the typed file was not chosen"),
            [dir.path().join("sub/f.tif")]
        );
        c.typed = "missing.tif".into();
        assert!(matches!(c.submit(false), Outcome::Open));
        assert!(c.message.as_deref().unwrap().contains("no such file"));

        let mut folder = chooser(dir.path(), Request::folder("t"));
        assert_eq!(
            chosen(folder.submit(true), "the folder shown was not chosen"),
            [dir.path().to_path_buf()]
        );
        // A new folder to write into, inside an existing one, is a choice too.
        folder.typed = "new-out".into();
        assert_eq!(
            chosen(folder.submit(false), "the new folder was not chosen"),
            [dir.path().join("new-out")]
        );
        folder.typed = "sub/f.tif".into();
        assert!(matches!(folder.submit(false), Outcome::Open));
        assert!(folder.message.as_deref().unwrap().contains("not a folder"));
    }
}
