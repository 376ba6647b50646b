import ArgumentParser
import DTwinApp
import DTwinConfig
import Foundation

struct CheckConfigCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check-config",
        abstract: "Check a configuration and its environment without starting anything.",
        discussion: """
            Reads the configuration as `dtwin bridge` would (the file, DTWIN_* variables, --broker \
            and --ca), prints what the bridge would run with, and checks what it would refuse at \
            start-up: Twilio credentials set by halves, phone numbers, AWS credentials where \
            DynamoDB, IAM signing or Lambda need them, the folders of the store and the spool, the \
            broker's CA file. Nothing is created, bound or connected.

            Exit status as for the bridge: 0 when it can start, 2 when a setting must change (each \
            problem is one line naming its key or variable). The systemd unit runs it before the \
            bridge (ExecStartPre), so a broken configuration is reported, not restarted in a loop.
            """
    )

    @OptionGroup var settings: BrokerOptions

    func run() async throws {
        try await reportingFailures {
            let loaded = try settings.load()
            let environment = ProcessInfo.processInfo.environment
            for line in StartupSummary.lines(loaded, environment: environment) { emit(line) }
            let problems = Preflight.problems(loaded.configuration, environment: environment)
            guard problems.isEmpty else {
                throw CommandFailure.usage(problems.map(\.description).joined(separator: "\n"))
            }
            emit("configuration OK: the bridge can start with it")
        }
    }
}
