import Foundation

/// Parsers for the scalar value types of the configuration. Each returns `nil` for text
/// that is not a value of its type; the loader turns that into an error naming the key.
public enum ValueParsers {
    /// `250ms`, `10s`, `10m`, `1h`, `1d`, or a bare number of seconds; fractions allowed.
    /// (Command-line options that take a duration use it too.)
    public static func duration(_ text: String) -> Duration? {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        let units: [(String, Double)] = [("ms", 0.001), ("s", 1), ("m", 60), ("h", 3600), ("d", 86400)]
        for (suffix, scale) in units where trimmed.hasSuffix(suffix) {
            let number = trimmed.dropLast(suffix.count)
            // "10ms" also ends in "s": only accept a number in front of the suffix.
            guard let value = Double(number), value.isFinite, value >= 0 else { continue }
            return .milliseconds(Int64((value * scale * 1000).rounded()))
        }
        if let seconds = Double(trimmed), seconds.isFinite, seconds >= 0 {
            return .milliseconds(Int64((seconds * 1000).rounded()))
        }
        return nil
    }

    /// `256KiB`, `256KB`, `10MB`, `1GiB`, or a bare number of bytes (KB = 1000, KiB = 1024).
    static func byteSize(_ text: String) -> Int? {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        let units: [(String, Int)] = [
            ("KiB", 1 << 10), ("MiB", 1 << 20), ("GiB", 1 << 30), ("KB", 1000), ("MB", 1_000_000),
            ("GB", 1_000_000_000), ("K", 1 << 10), ("M", 1 << 20), ("G", 1 << 30), ("B", 1),
        ]
        for (suffix, scale) in units where trimmed.hasSuffix(suffix) {
            let number = trimmed.dropLast(suffix.count).trimmingCharacters(in: .whitespaces)
            guard let value = Double(number), value.isFinite, value >= 0 else { continue }
            return Int((value * Double(scale)).rounded())
        }
        return Int(trimmed).flatMap { $0 >= 0 ? $0 : nil }
    }

    /// YAML 1.2's booleans (and `yes`/`no`, which people still write).
    static func bool(_ text: String) -> Bool? {
        switch text.lowercased() {
        case "true", "yes", "on": return true
        case "false", "no", "off": return false
        default: return nil
        }
    }

    static func int(_ text: String, in range: ClosedRange<Int>) -> Int? {
        Int(text.trimmingCharacters(in: .whitespaces)).flatMap { range.contains($0) ? $0 : nil }
    }

    static func number(_ text: String) -> Double? {
        Double(text.trimmingCharacters(in: .whitespaces)).flatMap { $0.isFinite ? $0 : nil }
    }

    /// `http://…` or `https://…` with a host, or empty (meaning "not set").
    static func httpURL(_ text: String) -> String? {
        if text.isEmpty { return text }
        for scheme in ["http://", "https://"] where text.hasPrefix(scheme) {
            let rest = text.dropFirst(scheme.count)
            let host = rest.prefix { $0 != "/" && $0 != "?" && $0 != "#" }
            return host.isEmpty || host.contains(" ") ? nil : text
        }
        return nil
    }
}
