import DTwinMQTT
import DTwinTestSupport
import Foundation
import Logging

extension DTwinBench {
    static let valgrind = "/usr/bin/valgrind"
    static let callgrindControl = "/usr/bin/callgrind_control"

    /// Instructions per message (issue 22): the bridge alone under valgrind's callgrind, which
    /// counts instructions and so does not move with the machine's load. Counting is switched on
    /// (`callgrind_control -i on`) after a warm-up, for `count` messages, and off again; the
    /// total of that stretch over `count` is the figure. The bridge runs tens of times slower
    /// meanwhile, so no time is measured here.
    ///
    /// With `--upstream local` the messages come one per device at a time, each followed by its
    /// twin write (counted from `dtwin_twin_writes_total`, and printed to show it).
    func measureInstructions(count: Int, broker: MosquittoProcess, receiver: HTTPSink, executable: String, logger: Logger) async throws
        -> (perMessage: Double, messages: Int, twinWrites: Int?)
    {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("dtwin-callgrind-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let httpPort = try freeLoopbackPort()
        let environment = bridgeEnvironment(
            broker: broker, receiver: receiver, directory: directory, clientId: "bench-callgrind", httpPort: httpPort)
        // Valgrind 3.19 gives up on the deployment build's DWARF ("possibly corrupted
        // debuginfo"); a copy without it runs the same instructions.
        let stripped = directory.appendingPathComponent("dtwin").path
        let strip = try ChildProcess(executable: "/usr/bin/objcopy", arguments: ["--strip-debug", executable, stripped])
        guard await strip.exited(within: .seconds(60)), strip.exitCode == 0 else {
            throw TestSupportError("objcopy --strip-debug \(executable) failed")
        }
        let output = directory.appendingPathComponent("callgrind.out")
        let status = try await MessageCollector(port: broker.port, filters: ["dtwin/bridge/status"])
        let bridge = try ChildProcess(
            executable: Self.valgrind,
            arguments: ["--tool=callgrind", "--instr-atstart=no", "--callgrind-out-file=\(output.path)", stripped, "bridge"],
            environment: ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("DTWIN_") }.merging(environment) { $1 },
            outputFile: directory.appendingPathComponent("bridge.log").path)
        defer {
            bridge.signal(SIGKILL)
            _ = bridge.waitForExit(timeout: 10)
        }
        let online = await status.waitFor(timeout: .seconds(180)) { $0.last?.payload == Array("online".utf8) }
        await status.close()
        guard online else { throw TestSupportError("the bridge under callgrind did not come online") }
        let local = upstream == "local"
        let delivered = { @Sendable () -> Int in local ? Self.deliveredCount(httpPort: httpPort) : receiver.requestCount }
        let publisher = try await connectedClient(broker: broker, id: "bench-callgrind-devices", logger: logger)
        let warmUpBase = delivered()
        try await publishBurst(publisher, count: 500, offset: 0)
        guard await waitUntil(timeout: .seconds(300), { delivered() >= warmUpBase + 500 }) else {
            throw TestSupportError("the warm-up did not go through the bridge under callgrind")
        }
        let twinWrites = { @Sendable () -> Int in Self.metric("dtwin_twin_writes_total", httpPort: httpPort) }
        // The warm-up's twin writes are over before counting starts.
        var settled = -1
        _ = await waitUntil(timeout: .seconds(60), interval: .seconds(1)) {
            defer { settled = twinWrites() }
            return twinWrites() == settled
        }
        let twinWritesBefore = twinWrites()
        // Polling /metrics costs the bridge instructions too: not more often than needed.
        let poll = Duration.milliseconds(200)
        try await control(["-i", "on", "\(bridge.pid)"])
        let base = delivered()
        var done = true
        // Local: whole rounds of one message a device, at least one.
        let rounds = max(1, count / devices)
        if local {
            // One message from each device, then their twin writes, then the next round: each
            // message with its own twin write, as for devices that send every few seconds. A
            // burst would share a write among however many messages one turn of the twin loop
            // (four a second) saw, which under callgrind's slowness varies from run to run.
            for round in 0..<rounds {
                try await publishBurst(publisher, count: devices, offset: 500 + round * devices)
                let sent = (round + 1) * devices
                done = await waitUntil(timeout: .seconds(120), interval: poll) {
                    delivered() >= base + sent && twinWrites() >= twinWritesBefore + sent
                }
                guard done else { break }
            }
        } else {
            try await publishBurst(publisher, count: count, offset: 500)
            done = await waitUntil(timeout: .seconds(600), interval: poll) { delivered() >= base + count }
        }
        try await control(["-i", "off", "\(bridge.pid)"])
        let twinWritesDuring = local ? twinWrites() - twinWritesBefore : nil
        try await control(["-d", "\(bridge.pid)"])
        await publisher.close()
        guard done else { throw TestSupportError("the bridge under callgrind delivered \(delivered() - base) of \(count)") }
        let count = local ? rounds * devices : count
        // The dump (callgrind.out.1) holds the stretch: its `totals:` line is the instructions of
        // every thread while counting was on (its `summary:` says 0 with --instr-atstart=no).
        let dumps = try FileManager.default.contentsOfDirectory(atPath: directory.path).filter { $0.hasPrefix("callgrind.out.") }
        let totals = try dumps.compactMap { dump -> Double? in
            let text = try String(contentsOf: directory.appendingPathComponent(dump), encoding: .utf8)
            let line = text.split(separator: "\n").first { $0.hasPrefix("totals:") }
            return line.flatMap { Double($0.dropFirst("totals:".count).trimmingCharacters(in: .whitespaces)) }
        }
        guard !totals.isEmpty else { throw TestSupportError("no callgrind dump with totals in \(dumps)") }
        if let keep = callgrindOut, let dump = dumps.sorted().last {
            // For callgrind_annotate: where the instructions went.
            try? FileManager.default.removeItem(atPath: keep)
            try FileManager.default.copyItem(at: directory.appendingPathComponent(dump), to: URL(fileURLWithPath: keep))
        }
        return (totals.reduce(0, +) / Double(count), count, twinWritesDuring)
    }

    func control(_ arguments: [String]) async throws {
        let process = try ChildProcess(executable: Self.callgrindControl, arguments: arguments)
        guard await process.exited(within: .seconds(60)), process.exitCode == 0 else {
            throw TestSupportError("callgrind_control \(arguments.joined(separator: " ")) failed")
        }
    }
}
