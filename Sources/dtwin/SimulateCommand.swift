import ArgumentParser
import DTwinBridge
import DTwinConfig
import DTwinContract
import DTwinInspect
import DTwinMQTT
import Foundation
import Synchronization

struct SimulateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "simulate",
        abstract: "Run simulated devices that behave like the UNO sketch.",
        discussion: """
            Each device connects with its own client id (sim-<dev>, persistent session) and a last will \
            (offline, retained, on <prefix>/<dev>/status), publishes online (retained) and <dev>:awake, \
            then a photoresistor reading every 1/RATE seconds on <prefix>/<dev>/up. It listens on \
            <prefix>/<dev>/down: LIG lights its LED, ACK turns it off, PERIOD N reads every N seconds, \
            and a lit LED shines on the photoresistor (+300 in the next readings). Like the sketch, it \
            reports its LED and period at start-up and after every change, as a JSON reading \
            ({"value":512,"led":true,"period":60}): the twin's reported state.

              dtwin simulate                         one device, sim1, a reading a second
              dtwin simulate --devices 20 --rate 5 --count 100 --format json --quiet

            After --count readings each, the devices publish offline and disconnect; Ctrl-C does the same.
            """
    )

    @OptionGroup var settings: BrokerOptions

    @Option(help: "How many devices.")
    var devices: Int = 1

    @Option(help: "Readings per second, per device.")
    var rate: Double = 1

    @Option(help: "Readings per device, then stop (default: until Ctrl-C).")
    var count: Int?

    @Option(help: "legacy (sim-<dev> data <adc>, as the sketch) or json ({\"value\", \"seq\", \"led\"}).")
    var format: SimulatedDevice.Format = .legacy

    @Option(help: "Device names are NAME1, NAME2, …")
    var name: String = "sim"

    @Flag(help: "Do not print each reading (commands and the summary are still printed).")
    var quiet = false

    func validate() throws {
        guard (1...1000).contains(devices) else { throw ValidationError("--devices must be from 1 to 1000") }
        guard rate > 0, rate <= 1000 else { throw ValidationError("--rate must be above 0 and at most 1000 readings a second") }
        if let count, count < 1 { throw ValidationError("--count must be at least 1") }
        do { _ = try DeviceName(validating: "\(name)\(devices)") } catch { throw ValidationError("--name: \(error)") }
    }

    func run() async throws {
        try await reportingFailures {
            let configuration = try settings.loadConfiguration()
            let tree = configuration.topicPrefix
            var simulated: [SimulatedDevice] = []
            for index in 1...devices {
                let device = DeviceName("\(name)\(index)")!
                simulated.append(SimulatedDevice(name: device, format: format, seed: UInt64(index) &* 0x9E37_79B9, period: 1 / rate))
            }
            var connected: [(SimulatedDevice, MQTTClient)] = []
            for device in simulated {
                var client = MQTTClientConfiguration.tool(configuration, name: "sim")
                client.clientID = "sim-\(device.name)"
                client.cleanSession = false
                client.will = .init(topic: tree.status(device.name), payload: "offline", retain: true)
                do {
                    connected.append((device, try await ToolConnection.connect(client)))
                } catch {
                    for (_, client) in connected { await client.close() }
                    throw error
                }
            }
            let count = self.count
            let quiet = self.quiet
            let sent = SharedNumber()
            let started = ContinuousClock.now
            let failure = await withTaskGroup(of: String?.self) { group in
                for (device, client) in connected {
                    group.addTask {
                        await Self.live(device, client, tree: tree, count: count, quiet: quiet, sent: sent)
                    }
                }
                group.addTask {
                    await interrupted()
                    return nil
                }
                var remaining = connected.count
                var failure: String?
                while remaining > 0, let result = await group.next() {
                    if let result { failure = failure ?? result }
                    remaining -= 1
                    if count == nil || failure != nil { break }  // Ctrl-C, or a device failed
                }
                group.cancelAll()
                return failure
            }
            for (device, client) in connected {
                try? await client.publish(topic: tree.status(device.name), payload: Array("offline".utf8), retain: true, timeout: .seconds(2))
                await client.close()
            }
            let elapsed = ContinuousClock.now - started
            let devices = connected.count == 1 ? "1 simulated device" : "\(connected.count) simulated devices"
            emit("\(devices) sent \(sent.current) \(sent.current == 1 ? "reading" : "readings") in \(elapsed.secondsText)")
            if let failure { throw CommandFailure.runtime(failure) }
        }
    }

    /// One device's life: online, awake, its state, readings, commands. Returns why it failed,
    /// if it did. A command that changes the LED or period is answered with a state report at
    /// once; the readings (which `--count` counts) keep their own pace.
    static func live(
        _ initial: SimulatedDevice, _ client: MQTTClient, tree: TopicTree, count: Int?, quiet: Bool, sent: SharedNumber
    ) async -> String? {
        let device = SharedDevice(initial)
        let name = initial.name
        let reportState = { @Sendable () async throws in
            let report = device.state.withLock { $0.stateReport() }
            try await client.publish(topic: tree.up(name), payload: Array(report.utf8), timeout: .seconds(10))
            sent.add(1)
            if !quiet { emit("\(name) → \(report)") }
        }
        let listener = Task {
            for await message in client.messages {
                let reaction = device.state.withLock { $0.handle(command: message.payload) }
                emit("\(name) got \(reaction.said)")
                if reaction.changed { try? await reportState() }
            }
        }
        defer { listener.cancel() }
        do {
            try await client.subscribe([tree.down(name)])
            try await client.publish(topic: tree.status(name), payload: Array("online".utf8), retain: true, timeout: .seconds(10))
            try await client.publish(topic: tree.up(name), payload: Array(initial.awakePayload.utf8), timeout: .seconds(10))
            try await reportState()
            var next = ContinuousClock.now
            var number = 0
            while count.map({ number < $0 }) ?? true {
                next += .seconds(device.state.withLock { $0.period })
                try await Task.sleep(until: next)
                let payload = device.state.withLock { $0.nextReading() }
                try await client.publish(topic: tree.up(name), payload: Array(payload.utf8), timeout: .seconds(10))
                sent.add(1)
                if !quiet { emit("\(name) → \(payload)") }
                number += 1
            }
            return nil
        } catch is CancellationError {
            return nil
        } catch {
            return "\(name): \(error)"
        }
    }
}

/// One simulated device, shared by its reading loop and its command listener.
final class SharedDevice: Sendable {
    let state: Mutex<SimulatedDevice>
    init(_ device: SimulatedDevice) { state = Mutex(device) }
}

extension SimulatedDevice.Format: ExpressibleByArgument {}
