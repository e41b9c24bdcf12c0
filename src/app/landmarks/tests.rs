use super::*;
use crate::transform::Affine;

#[test]
fn a_click_completes_the_oldest_pair_missing_its_side() {
    let mut e = LandmarkEditor::default();
    e.place(Side::Fixed, [1.0, 1.0]);
    e.place(Side::Fixed, [2.0, 2.0]);
    e.place(Side::Moving, [1.5, 1.0]);
    e.place(Side::Moving, [2.5, 2.0]);
    e.place(Side::Moving, [9.0, 9.0]);
    assert_eq!(e.pairs.len(), 3);
    assert_eq!(e.pairs[0].moving, Some([1.5, 1.0]));
    assert_eq!(e.pairs[1].moving, Some([2.5, 2.0]));
    assert_eq!(e.pairs[2].fixed, None);
    assert_eq!(e.complete().0, vec![[1.0, 1.0], [2.0, 2.0]]);
    assert_eq!(e.selected, Some(2));
}

#[test]
fn undo_and_redo_walk_the_changes() {
    let mut e = LandmarkEditor::default();
    e.place(Side::Fixed, [1.0, 1.0]);
    e.place(Side::Moving, [2.0, 1.0]);
    e.delete(0);
    assert!(e.pairs.is_empty());
    assert!(e.undo());
    assert_eq!(e.pairs.len(), 1);
    assert!(e.undo());
    assert_eq!(e.pairs[0].moving, None);
    assert!(e.redo());
    assert_eq!(e.pairs[0].moving, Some([2.0, 1.0]));
    e.place(Side::Fixed, [5.0, 5.0]);
    assert!(!e.redo(), "a new change drops what was undone");
    assert!(e.undo() && e.undo() && e.undo());
    assert!(!e.undo());
    assert!(e.pairs.is_empty());
}

#[test]
fn errors_follow_the_transform_and_skip_incomplete_pairs() {
    let mut e = LandmarkEditor::default();
    e.place(Side::Fixed, [10.0, 10.0]);
    e.place(Side::Fixed, [30.0, 10.0]);
    e.place(Side::Moving, [13.0, 14.0]);
    let (before, report) = e.errors(None, 100.0).unwrap();
    assert_eq!(before.len(), 1);
    assert_eq!(before[0].0, 0);
    assert!((report.tre_median_px - 5.0).abs() < 1e-12);
    let shift = Affine::similarity(0.0, 1.0, [3.0, 4.0], [0.0, 0.0]);
    let (after, _) = e.errors(Some(&shift), 100.0).unwrap();
    assert!(after[0].1.after_px < 1e-9);
}

#[test]
fn files_load_into_one_side_or_both_and_save_back() {
    let dir = tempfile::tempdir().unwrap();
    let fixed = dir.path().join("f.csv");
    std::fs::write(&fixed, ",X,Y\n0,1,2\n1,3,4\n").unwrap();
    let mut e = LandmarkEditor::default();
    assert!(
        e.load(&fixed, Side::Fixed)
            .unwrap()
            .contains("2 fixed landmarks")
    );
    assert!(
        e.save(&dir.path().join("x.csv"), None).is_err(),
        "nothing complete yet"
    );
    e.place(Side::Moving, [1.5, 2.5]);
    let pairs = dir.path().join("pairs.csv");
    e.save(&pairs, None).unwrap();
    let mut back = LandmarkEditor::default();
    assert!(
        back.load(&pairs, Side::Moving)
            .unwrap()
            .contains("1 landmark pairs")
    );
    assert_eq!(
        back.pairs,
        vec![LandmarkPair {
            fixed: Some([1.0, 2.0]),
            moving: Some([1.5, 2.5]),
        }]
    );
    let bad = dir.path().join("bad.csv");
    std::fs::write(&bad, "x,y\n1,nope\n").unwrap();
    let message = back.load(&bad, Side::Fixed).unwrap_err().to_string();
    assert!(
        message.contains("bad.csv") && message.contains("line 2"),
        "{message}"
    );
    assert_eq!(back.pairs.len(), 1, "a bad file changes nothing");
}

#[test]
fn annotations_are_carried_both_ways_through_the_transform() {
    let t = Affine::similarity(0.2, 1.1, [5.0, -3.0], [50.0, 50.0]);
    let fixed = Annotation {
        name: "a".into(),
        side: Side::Fixed,
        points: vec![[10.0, 20.0], [70.0, 40.0]],
        visible: true,
    };
    let there = carried(&fixed, Some(&t));
    let back = carried(
        &Annotation {
            side: Side::Moving,
            points: there.clone(),
            ..fixed.clone()
        },
        Some(&t),
    );
    for (p, q) in fixed.points.iter().zip(&back) {
        assert!((p[0] - q[0]).hypot(p[1] - q[1]) < 0.02, "{p:?} {q:?}");
    }
    assert_eq!(carried(&fixed, None), fixed.points);
}
