//! The Batch tab's MI network as a person uses it: a folder chosen, the network computed in
//! the background, the reference and the order handed to the batch.

use super::*;
use crate::raster::{AnyImage, SampleDepth};

#[test]
fn the_network_of_a_shuffled_stack_offers_its_reference_and_order_to_the_batch() {
    let dir = tempfile::tempdir().unwrap();
    let stack = dir.path().join("stack");
    std::fs::create_dir_all(&stack).unwrap();
    // Slice z saved under a name that does not sort in the series order.
    let names = ["e", "b", "h", "a", "f", "c", "g", "d"];
    for (z, slice) in crate::synth::volume_slices(96, 8, 3).iter().enumerate() {
        let image = AnyImage::from_gray_units(slice, SampleDepth::U8);
        io::save_image(&stack.join(format!("{}.png", names[z])), &image).unwrap();
    }
    let mut harness = harness(AlinifyApp::new(Settings::default()).unwrap());
    harness.set_size(egui::vec2(1100.0, 1000.0));
    harness.get_by_label("Batch").click();
    harness.run_steps(2);
    harness
        .get_by_label("MI network (reference and order)")
        .click();
    harness.run();
    harness.get_by_label("Network of a folder…").click();
    harness.run_steps(2);
    harness.event(egui::Event::Text(stack.to_str().unwrap().to_owned()));
    harness.run_steps(1);
    harness.key_press(egui::Key::Enter);
    harness.run_steps(2);
    harness.get_by_label("Choose this folder").click();
    harness.run_steps(1);
    step_until(&mut harness, |app| app.batch.network.network.is_some());
    let view = &harness.state().batch.network;
    let network = view.network.as_ref().unwrap();
    let slice_of = |i: usize| {
        let stem = view.images[i]
            .file_stem()
            .unwrap()
            .to_str()
            .unwrap()
            .to_string();
        names.iter().position(|n| *n == stem).unwrap()
    };
    let order: Vec<usize> = network.order.order.iter().map(|&i| slice_of(i)).collect();
    assert!(
        order == (0..8).collect::<Vec<_>>() || order == (0..8).rev().collect::<Vec<_>>(),
        "{order:?}"
    );
    let reference = slice_of(network.reference);
    assert!((3..=4).contains(&reference), "reference {reference}");
    assert!(harness.query_by_label_contains("edges kept").is_some());

    harness.get_by_label("Chain in this order").click();
    harness.run_steps(2);
    let Some(batch_panel::BatchSource::Series(series)) = &harness.state().batch.source else {
        panic!("a chain in the network's order")
    };
    assert_eq!(series.len(), 8);
    harness.get_by_label("Reference batch").click();
    harness.run_steps(2);
    let Some(batch_panel::BatchSource::Reference { fixed, moving_dir }) =
        &harness.state().batch.source
    else {
        panic!("a reference batch")
    };
    assert_eq!(moving_dir, &stack);
    assert_eq!(
        fixed.file_stem().unwrap().to_str().unwrap(),
        names[reference]
    );
}
