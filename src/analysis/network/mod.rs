//! A mutual-information network over many images (ARACNe-AP's method, from network biology):
//! the all-pairs MI of their pixels by adaptive partitioning (`mi`), the data-processing
//! inequality that keeps only direct dependencies (`dpi`), and from the pruned network the
//! reference (its graph centre) and the order of a series (`order`).

mod dpi;
mod mi;
mod order;

pub use dpi::{Edge, prune};
pub use mi::{
    Estimator, HISTOGRAM_BINS, Variable, adaptive_mi, histogram_mi, mi_matrix,
    permutation_threshold, ranks,
};
pub use order::{OrderMethod, SeriesOrder, closeness_centre, series_order};
