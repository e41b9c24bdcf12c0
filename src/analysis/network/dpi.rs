//! ARACNe's data-processing inequality: in every triangle of the network the weakest edge is
//! an indirect dependence (a → b → c makes a–c weaker than both) and is removed.

/// An edge of the network: images `a < b` and their mutual information.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Edge {
    /// The first image (index).
    pub a: usize,
    /// The second image (index), above `a`.
    pub b: usize,
    /// Their mutual information (nats).
    pub mi: f64,
}

/// The edges of the all-pairs matrix `mi` kept by the DPI: an edge is dropped when it is at
/// or above `threshold` but some third image `k`, joined to both ends by edges at or above the
/// threshold, has `mi(a, b) < min(mi(a, k), mi(b, k)) · (1 − tolerance)`. Every triangle is
/// judged on the original matrix, so the result does not depend on the order of the images.
pub fn prune(mi: &[Vec<f64>], threshold: f64, tolerance: f64) -> Vec<Edge> {
    let n = mi.len();
    let present = |i: usize, j: usize| i != j && mi[i][j] >= threshold;
    let mut kept = Vec::new();
    for a in 0..n {
        for b in a + 1..n {
            if !present(a, b) {
                continue;
            }
            let weakest = (0..n).any(|k| {
                k != a
                    && k != b
                    && present(a, k)
                    && present(b, k)
                    && mi[a][b] < mi[a][k].min(mi[b][k]) * (1.0 - tolerance)
            });
            if !weakest {
                kept.push(Edge { a, b, mi: mi[a][b] });
            }
        }
    }
    kept
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_indirect_edge_of_a_chain_goes_and_the_direct_ones_stay() {
        // a -> b -> c: a-c is the weakest of the triangle.
        let mi = vec![
            vec![0.0, 0.9, 0.4],
            vec![0.9, 0.0, 0.8],
            vec![0.4, 0.8, 0.0],
        ];
        let kept = prune(&mi, 0.0, 0.0);
        let pairs: Vec<(usize, usize)> = kept.iter().map(|e| (e.a, e.b)).collect();
        assert_eq!(pairs, [(0, 1), (1, 2)]);
        // A tolerance wide enough keeps it; a threshold above it drops it without a triangle.
        assert_eq!(prune(&mi, 0.0, 0.6).len(), 3);
        assert_eq!(prune(&mi, 0.5, 0.0).len(), 2);
    }
}
