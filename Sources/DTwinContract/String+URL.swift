extension String {
    /// A base URL without its trailing slashes, so `base + "/path"` has exactly one.
    public func trimmingTrailingSlashes() -> String {
        var text = self
        while text.hasSuffix("/") { text.removeLast() }
        return text
    }
}

extension StringProtocol {
    /// Without leading and trailing Unicode white space (the scalars Foundation's
    /// `.whitespacesAndNewlines` holds). Pure Swift: Foundation's `trimmingCharacters` goes
    /// through `NSString`, and this runs for every device message.
    public func trimmingWhitespace() -> SubSequence {
        let scalars = unicodeScalars
        guard let first = scalars.firstIndex(where: { !$0.properties.isWhitespace }),
            let last = scalars.lastIndex(where: { !$0.properties.isWhitespace })
        else { return self[endIndex...] }
        return self[first...last]
    }
}

extension String? {
    /// The value, or `nil` when it is missing or empty: a setting or variable set to "" counts
    /// as unset.
    public var nonEmpty: String? {
        guard let self, !self.isEmpty else { return nil }
        return self
    }
}
