import BerthSupport

/// What a multi-step operation has changed so far, to be undone in reverse if a later step
/// fails (all or nothing). Each step is recorded right after it succeeds.
struct UndoStack {
    private var steps: [(label: String, undo: () throws -> Void)] = []

    mutating func push(_ label: String, _ undo: @escaping () throws -> Void) {
        steps.append((label, undo))
    }

    /// Undoes everything in reverse order, going on past failures; returns what could not be undone.
    mutating func rollback() -> [String] {
        var failures: [String] = []
        for step in steps.reversed() {
            do { try step.undo() } catch { failures.append("\(step.label): \(error)") }
        }
        steps = []
        return failures
    }

    /// The operation succeeded: nothing is to be undone.
    mutating func commit() { steps = [] }
}
