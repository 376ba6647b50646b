import ArgumentParser
import DTwinBridge
import DTwinConfig
import DTwinContract
import DTwinMQTT
import Logging

struct SendCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "send",
        abstract: "Publish a command on <prefix>/DEV/down and wait for the broker to acknowledge it.",
        discussion: """
            Example: dtwin send uno1 LIG     (the sketch lights its LED; ACK turns it off)

            The command is one line of text, 1 to 1024 bytes, checked as the API and SMS check it. \
            Exits 0 once the broker has acknowledged the message (QoS 1), 2 for a bad device name, \
            command or timeout, 1 when the broker cannot be reached or refuses the connection or the \
            publish.
            """
    )

    @OptionGroup var settings: BrokerOptions

    @Argument(help: "The device name ([A-Za-z0-9_-], up to 64 characters).")
    var device: String

    @Argument(help: "The command text, e.g. LIG or ACK.")
    var command: String

    @Option(help: ArgumentHelp("How long to wait for the broker (connection and acknowledgement).", valueName: "DURATION"))
    var timeout: DurationArgument = DurationArgument(argument: "5s")!

    func run() async throws {
        try await reportingFailures {
            let name = try validDeviceName(device)
            let command: DeviceCommand
            do { command = try DeviceCommand(validating: self.command) } catch { throw CommandFailure.usage("\(error)") }
            guard timeout.duration > .zero else { throw CommandFailure.usage("--timeout must be longer than 0") }
            let configuration = try settings.loadConfiguration()
            let client = try await ToolConnection.connect(.tool(configuration, name: "send"), timeout: timeout.duration)
            do {
                let topic = configuration.topicPrefix.down(name)
                try await client.publish(topic: topic, payload: Array(command.text.utf8), qos: .atLeastOnce, timeout: timeout.duration)
                await client.close()
                print("sent \(command.text.debugDescription) to \(topic)")
            } catch {
                await client.close()
                throw CommandFailure.runtime("\(error)")
            }
        }
    }
}
