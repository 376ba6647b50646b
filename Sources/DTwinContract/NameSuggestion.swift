/// "Did you mean …?" for a mistyped name: a configuration key, an environment variable, a
/// command. One rule of closeness everywhere, so the CLI and the configuration agree.
public enum NameSuggestion {
    /// The candidate closest to `text` (ignoring case), if at most `maximumEdits` edits away.
    public static func closest(to text: String, among candidates: [String], maximumEdits: Int) -> String? {
        let lowered = text.lowercased()
        let scored = candidates.map { ($0, editDistance(lowered, $0.lowercased())) }
        guard let best = scored.min(by: { $0.1 < $1.1 }), best.1 <= maximumEdits else { return nil }
        return best.0
    }

    /// Edit distance counting an insertion, a deletion, a substitution and a swap of two
    /// neighbouring characters (the commonest typo: `inpsect`) as one edit each (optimal string
    /// alignment).
    public static func editDistance(_ a: String, _ b: String) -> Int {
        let a = Array(a.utf8)
        let b = Array(b.utf8)
        guard !a.isEmpty, !b.isEmpty else { return max(a.count, b.count) }
        var table = Array(repeating: Array(repeating: 0, count: b.count + 1), count: a.count + 1)
        for i in 0...a.count { table[i][0] = i }
        for j in 0...b.count { table[0][j] = j }
        for i in 1...a.count {
            for j in 1...b.count {
                let cost = a[i - 1] == b[j - 1] ? 0 : 1
                table[i][j] = min(table[i - 1][j] + 1, table[i][j - 1] + 1, table[i - 1][j - 1] + cost)
                if i > 1, j > 1, a[i - 1] == b[j - 2], a[i - 2] == b[j - 1] {
                    table[i][j] = min(table[i][j], table[i - 2][j - 2] + 1)
                }
            }
        }
        return table[a.count][b.count]
    }
}
