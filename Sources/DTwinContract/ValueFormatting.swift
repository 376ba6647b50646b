import Foundation

extension Double {
    /// A reading as people read it: 512 rather than 512.0; other values as Swift prints them.
    public var readingText: String {
        rounded() == self && abs(self) < 1e15 ? String(Int64(self)) : String(self)
    }
}

extension Duration {
    /// The whole duration in nanoseconds (what NIO deadlines and timeouts take).
    public var nanoseconds: Int64 {
        let (seconds, attoseconds) = components
        return seconds * 1_000_000_000 + attoseconds / 1_000_000_000
    }

    /// The duration in seconds, for rates and summaries.
    public var seconds: Double {
        let (whole, attoseconds) = components
        return Double(whole) + Double(attoseconds) / 1e18
    }
}

extension Timestamp {
    /// The wall clock in Unix milliseconds, rounded down.
    public static func nowMillis() -> Int64 {
        Int64((Date().timeIntervalSince1970 * 1000).rounded(.down))
    }
}
