extension String {
    /// A base URL without its trailing slashes, so `base + "/path"` has exactly one.
    public func trimmingTrailingSlashes() -> String {
        var text = self
        while text.hasSuffix("/") { text.removeLast() }
        return text
    }
}
