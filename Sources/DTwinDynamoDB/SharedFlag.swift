import Synchronization

/// A flag that many copies of a value type share and that is set once: ``setOnce()`` is `true`
/// for the one caller that set it.
final class SharedFlag: Sendable {
    private let value = Atomic<Bool>(false)

    func setOnce() -> Bool {
        value.compareExchange(expected: false, desired: true, ordering: .relaxed).exchanged
    }
}
