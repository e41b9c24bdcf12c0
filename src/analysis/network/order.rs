//! The reference and the order of a series from its MI network: the graph centre of the pruned
//! network, and the path through the images (the maximum spanning tree when it is a path,
//! otherwise the best of a greedy path from every start improved by 2-opt).

use super::dpi::Edge;

/// Edge length for paths: strong dependence is short.
fn length(mi: f64) -> f64 {
    1.0 / mi.max(1e-9)
}

/// The closeness centre of the network of `n` images joined by `edges`: the image that reaches
/// the most others and, among those, has the smallest sum of shortest-path lengths (an edge's
/// length is `1 / MI`). For a series, a middle image.
pub fn closeness_centre(n: usize, edges: &[Edge]) -> usize {
    let mut adjacency = vec![Vec::new(); n];
    for e in edges {
        adjacency[e.a].push((e.b, length(e.mi)));
        adjacency[e.b].push((e.a, length(e.mi)));
    }
    let score = |source: usize| {
        // Dijkstra over a small dense graph.
        let mut distance = vec![f64::INFINITY; n];
        let mut done = vec![false; n];
        distance[source] = 0.0;
        for _ in 0..n {
            let Some(u) = (0..n)
                .filter(|&i| !done[i] && distance[i].is_finite())
                .min_by(|&i, &j| distance[i].total_cmp(&distance[j]))
            else {
                break;
            };
            done[u] = true;
            for &(v, l) in &adjacency[u] {
                distance[v] = distance[v].min(distance[u] + l);
            }
        }
        let reached = distance.iter().filter(|d| d.is_finite()).count();
        let sum: f64 = distance.iter().filter(|d| d.is_finite()).sum();
        (reached, sum)
    };
    (0..n)
        .map(|i| (i, score(i)))
        .max_by(|(_, (ra, sa)), (_, (rb, sb))| ra.cmp(rb).then(sb.total_cmp(sa)))
        .map_or(0, |(i, _)| i)
}

/// How a series' order was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum OrderMethod {
    /// The maximum spanning tree of the MI matrix is a path.
    SpanningPath,
    /// The tree branches: the shortest Hamiltonian path found (greedy from every start, 2-opt).
    PathSearch,
}

/// The recovered order of a series.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SeriesOrder {
    /// Image indices from one end of the series to the other.
    pub order: Vec<usize>,
    /// How it was found.
    pub method: OrderMethod,
    /// The share of the pruned network's edges that join neighbours in the order (1 for a
    /// clean series, lower when the network has shortcuts the order cannot follow).
    pub confidence: f64,
}

/// The order of the images whose all-pairs MI is `mi`, with `edges` the pruned network (for
/// the confidence).
pub fn series_order(mi: &[Vec<f64>], edges: &[Edge]) -> SeriesOrder {
    let n = mi.len();
    let (order, method) = match spanning_path(mi) {
        Some(path) => (path, OrderMethod::SpanningPath),
        None => (path_search(mi), OrderMethod::PathSearch),
    };
    let mut position = vec![0usize; n];
    for (p, &i) in order.iter().enumerate() {
        position[i] = p;
    }
    let neighbours = edges
        .iter()
        .filter(|e| position[e.a].abs_diff(position[e.b]) == 1)
        .count();
    let confidence = if edges.is_empty() {
        0.0
    } else {
        neighbours as f64 / edges.len() as f64
    };
    SeriesOrder {
        order,
        method,
        confidence,
    }
}

/// The maximum spanning tree of `mi` (Prim) walked from one end, when it is a path.
fn spanning_path(mi: &[Vec<f64>]) -> Option<Vec<usize>> {
    let n = mi.len();
    if n <= 2 {
        return Some((0..n).collect());
    }
    let mut in_tree = vec![false; n];
    let mut best = vec![(f64::NEG_INFINITY, 0usize); n];
    let mut adjacency = vec![Vec::new(); n];
    in_tree[0] = true;
    for j in 1..n {
        best[j] = (mi[0][j], 0);
    }
    for _ in 1..n {
        let v = (0..n)
            .filter(|&j| !in_tree[j])
            .max_by(|&a, &b| best[a].0.total_cmp(&best[b].0))?;
        in_tree[v] = true;
        let u = best[v].1;
        adjacency[u].push(v);
        adjacency[v].push(u);
        for j in 0..n {
            if !in_tree[j] && mi[v][j] > best[j].0 {
                best[j] = (mi[v][j], v);
            }
        }
    }
    if adjacency.iter().any(|a| a.len() > 2) {
        return None;
    }
    let start = (0..n).find(|&i| adjacency[i].len() == 1)?;
    let mut path = vec![start];
    let mut previous = usize::MAX;
    let mut at = start;
    while let Some(&next) = adjacency[at].iter().find(|&&j| j != previous) {
        path.push(next);
        previous = at;
        at = next;
    }
    Some(path)
}

/// The total length of a path.
fn path_length(mi: &[Vec<f64>], path: &[usize]) -> f64 {
    path.windows(2).map(|w| length(mi[w[0]][w[1]])).sum()
}

/// The shortest open path through every image found by a greedy walk from each start (to the
/// most dependent unvisited image), each improved by 2-opt reversals.
fn path_search(mi: &[Vec<f64>]) -> Vec<usize> {
    let n = mi.len();
    (0..n)
        .map(|start| {
            let mut path = vec![start];
            let mut visited = vec![false; n];
            visited[start] = true;
            while path.len() < n {
                let at = *path.last().expect("not empty");
                let next = (0..n)
                    .filter(|&j| !visited[j])
                    .max_by(|&a, &b| mi[at][a].total_cmp(&mi[at][b]))
                    .expect("an unvisited image");
                visited[next] = true;
                path.push(next);
            }
            two_opt(mi, &mut path);
            let cost = path_length(mi, &path);
            (path, cost)
        })
        .min_by(|a, b| a.1.total_cmp(&b.1))
        .map(|(p, _)| p)
        .unwrap_or_default()
}

/// Reverses segments of `path` while that shortens it.
fn two_opt(mi: &[Vec<f64>], path: &mut [usize]) {
    let n = path.len();
    let mut improved = true;
    while improved {
        improved = false;
        for i in 0..n.saturating_sub(1) {
            for j in i + 1..n {
                let before = path_length(mi, path);
                path[i..=j].reverse();
                if path_length(mi, path) + 1e-12 < before {
                    improved = true;
                } else {
                    path[i..=j].reverse();
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// MI falling with the distance along a hidden order.
    fn series(hidden: &[usize]) -> Vec<Vec<f64>> {
        let n = hidden.len();
        let mut position = vec![0.0f64; n];
        for (p, &i) in hidden.iter().enumerate() {
            position[i] = p as f64;
        }
        (0..n)
            .map(|i| {
                (0..n)
                    .map(|j| {
                        if i == j {
                            0.0
                        } else {
                            2.0 / (1.0 + (position[i] - position[j]).abs())
                        }
                    })
                    .collect()
            })
            .collect()
    }

    fn same_up_to_reversal(a: &[usize], b: &[usize]) -> bool {
        a == b || a.iter().rev().eq(b.iter())
    }

    #[test]
    fn a_shuffled_series_comes_back_in_order_with_a_middle_reference() {
        let hidden = [4, 9, 0, 7, 2, 11, 5, 1, 10, 3, 8, 6];
        let mi = series(&hidden);
        let edges = super::super::dpi::prune(&mi, 0.0, 0.0);
        assert_eq!(edges.len(), 11, "only neighbours keep their edge");
        let order = series_order(&mi, &edges);
        assert!(
            same_up_to_reversal(&order.order, &hidden),
            "{:?}",
            order.order
        );
        assert_eq!(order.method, OrderMethod::SpanningPath);
        assert_eq!(order.confidence, 1.0);
        let centre = closeness_centre(12, &edges);
        let at = hidden.iter().position(|&i| i == centre).unwrap();
        assert!((5..=6).contains(&at), "the reference sits at {at}");
    }

    #[test]
    fn a_branching_tree_falls_back_to_the_path_search() {
        // A star: image 0 depends on all others equally, they barely on each other.
        let mut mi = vec![vec![0.1; 5]; 5];
        for (i, row) in mi.iter_mut().enumerate() {
            row[i] = 0.0;
        }
        for row in mi.iter_mut().skip(1) {
            row[0] = 1.0;
        }
        mi[0][1..].fill(1.0);
        let order = series_order(&mi, &[]);
        assert_eq!(order.method, OrderMethod::PathSearch);
        let mut sorted = order.order.clone();
        sorted.sort();
        assert_eq!(sorted, [0, 1, 2, 3, 4]);
    }
}
