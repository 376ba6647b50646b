import DTwinContract

/// What `dtwin` says about a first word that is not one of its commands: ArgumentParser
/// suggests mistyped options but not mistyped commands, and treats `dtwin help nosuch` as
/// `dtwin help`.
enum CommandSuggestion {
    /// The closest of `commands` to `word`: at most two edits away (one for words of up to four
    /// letters, which are all close to something), or the one command that `word` begins.
    static func closest(to word: String, among commands: [String]) -> String? {
        if let near = NameSuggestion.closest(to: word, among: commands, maximumEdits: word.count <= 4 ? 1 : 2) { return near }
        let begun = commands.filter { $0.hasPrefix(word.lowercased()) }
        return begun.count == 1 ? begun[0] : nil
    }

    /// The message for an unknown command, with the list of commands to choose from.
    static func unknown(_ word: String, among commands: [String]) -> String {
        let hint = closest(to: word, among: commands).map { "; did you mean '\($0)'?" } ?? ""
        return "'\(word)' is not a dtwin command\(hint)\nThe commands: \(commands.joined(separator: ", ")). See 'dtwin --help'."
    }
}
