import ArgumentParser
import DTwinApp
import Foundation

@main
struct DTwinCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dtwin",
        abstract: "The digital-twin gateway: device MQTT topics in, the AWS message contract out.",
        discussion: """
            Devices publish on <prefix>/<dev>/up; the bridge turns each message into the API Gateway \
            event the cloud side reads, stores readings in the twin table and publishes replies on \
            <prefix>/<dev>/down. Configuration: dtwin.yaml in the working folder (or --config FILE, \
            or DTWIN_CONFIG); every key can be overridden as DTWIN_<PATH>, e.g. DTWIN_UPSTREAM_URL.

            Exit codes: 0 success, 1 a runtime failure (broker, store, upstream), 2 bad \
            configuration or arguments.
            """,
        version: DTwinVersion.current,
        subcommands: [
            BridgeCommand.self, InspectCommand.self, SendCommand.self, SimulateCommand.self, ReplayCommand.self, EventCommand.self,
            ReadingsCommand.self, StateCommand.self, SMSCommand.self, CheckConfigCommand.self,
        ]
    )

    /// ArgumentParser's own main, except that bad arguments exit 2 (as `--help` documents for
    /// every dtwin verb), not ArgumentParser's 64.
    static func main() async {
        refuseUnknownCommand(Array(CommandLine.arguments.dropFirst()))
        do {
            var command = try parseAsRoot()
            if var asyncCommand = command as? any AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
        } catch {
            if exitCode(for: error) == .validationFailure {
                FileHandle.standardError.write(Data((fullMessage(for: error) + "\n").utf8))
                Foundation.exit(2)
            }
            exit(withError: error)
        }
    }

    /// `dtwin inpsect` and `dtwin help nosuch` name the commands (and the likely one) and exit 2;
    /// ArgumentParser alone says "Unexpected argument" and prints the top help with exit 0.
    static func refuseUnknownCommand(_ arguments: [String]) {
        let commands = configuration.subcommands.compactMap { $0.configuration.commandName }
        var words = arguments.prefix(2)
        if words.first == "help" { words = words.dropFirst() }
        guard let word = words.first, !word.hasPrefix("-"), !commands.contains(word), word != "help" else { return }
        FileHandle.standardError.write(Data("dtwin: \(CommandSuggestion.unknown(word, among: commands))\n".utf8))
        Foundation.exit(2)
    }
}
