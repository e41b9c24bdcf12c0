//! Undo and redo over snapshots of some state: a change counts once it has settled (no drag
//! in progress), so a slider dragged across a hundred frames is one step.

/// Most steps kept.
const DEPTH: usize = 100;

/// The undo and redo stacks of one kind of state.
#[derive(Debug, Clone)]
pub struct History<T> {
    undo: Vec<T>,
    redo: Vec<T>,
    /// The last settled state (what an undo returns to first).
    settled: Option<T>,
}

impl<T> Default for History<T> {
    fn default() -> Self {
        Self {
            undo: Vec::new(),
            redo: Vec::new(),
            settled: None,
        }
    }
}

impl<T: Clone + PartialEq> History<T> {
    /// Starts over from `current` (a newly loaded pair): nothing to undo or redo.
    pub fn reset(&mut self, current: T) {
        self.undo.clear();
        self.redo.clear();
        self.settled = Some(current);
    }

    /// Notes `current` once per frame; while `busy` (a drag goes on) changes wait to settle.
    pub fn observe(&mut self, current: &T, busy: bool) {
        match &self.settled {
            None => self.settled = Some(current.clone()),
            Some(settled) if !busy && settled != current => {
                let before = self.settled.replace(current.clone());
                self.undo.extend(before);
                if self.undo.len() > DEPTH {
                    self.undo.remove(0);
                }
                self.redo.clear();
            }
            Some(_) => {}
        }
    }

    /// The state before the last change, given the state now; `None` when there is none.
    pub fn undo(&mut self, current: &T) -> Option<T> {
        self.observe(current, false);
        let before = self.undo.pop()?;
        self.redo.extend(self.settled.replace(before.clone()));
        Some(before)
    }

    /// The state the last undo left, given the state now; `None` when there is none.
    pub fn redo(&mut self, current: &T) -> Option<T> {
        self.observe(current, false);
        let after = self.redo.pop()?;
        self.undo.extend(self.settled.replace(after.clone()));
        Some(after)
    }

    /// Whether there is a change to undo.
    pub fn can_undo(&self) -> bool {
        !self.undo.is_empty()
    }

    /// Whether there is an undone change to make again.
    pub fn can_redo(&self) -> bool {
        !self.redo.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::History;

    #[test]
    fn a_drag_is_one_step_and_undo_redo_walk_the_settled_states() {
        let mut h = History::default();
        h.reset(0);
        // A drag through 1, 2, 3 settles at 3: one step.
        for v in [1, 2, 3] {
            h.observe(&v, true);
        }
        h.observe(&3, false);
        h.observe(&7, false);
        assert_eq!(h.undo(&7), Some(3));
        assert_eq!(h.undo(&3), Some(0));
        assert_eq!(h.undo(&0), None);
        assert_eq!(h.redo(&0), Some(3));
        // A new change drops what could be redone.
        h.observe(&5, false);
        assert!(!h.can_redo());
        assert_eq!(h.undo(&5), Some(3));
        // A change not yet observed is settled before it is undone.
        assert_eq!(h.undo(&9), Some(3));
        assert_eq!(h.redo(&3), Some(9));
    }
}
