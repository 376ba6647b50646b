import DTwinApp
import DTwinTestSupport
import Foundation
import Testing

/// dtwin as a system service (issue 21, item 5): the systemd unit passes `systemd-analyze
/// verify`, `dtwin check-config` says what the bridge would refuse without starting anything,
/// and the .deb puts each file where the unit and the README say, with a binary that runs.
@Suite struct ServicePackagingTests {
    @Test func theUnitVerifies() async throws {
        let folder = try makeTemporaryFolder("dtwin-unit")
        defer { try? FileManager.default.removeItem(at: folder) }
        // The unit as installed, pointing at this build's binary (verify checks it exists).
        let unit = try String(contentsOf: ProjectFolder.file("packaging/dtwin.service"), encoding: .utf8)
            .replacingOccurrences(of: "/usr/bin/dtwin", with: DTwinBinary.path)
        let path = folder.appendingPathComponent("dtwin.service")
        try unit.write(to: path, atomically: true, encoding: .utf8)
        let verify = try await GeneratedBroker.run("/usr/bin/systemd-analyze", ["verify", path.path])
        #expect(verify.code == 0 && verify.errors.isEmpty, "\(verify.output)\(verify.errors)")
        for line in [
            "DynamicUser=yes", "ProtectSystem=strict", "StateDirectory=dtwin", "EnvironmentFile=-/etc/dtwin/dtwin.env",
            "Restart=on-failure", "RestartPreventExitStatus=2", "ExecStartPre=/usr/bin/dtwin check-config",
        ] {
            #expect(try String(contentsOf: ProjectFolder.file("packaging/dtwin.service"), encoding: .utf8).contains(line), "\(line)")
        }
    }

    @Test func checkConfigFindsWhatTheBridgeWouldRefuseAndStartsNothing() async throws {
        let folder = try makeTemporaryFolder("dtwin-check")
        defer { try? FileManager.default.removeItem(at: folder) }
        let good = [
            "DTWIN_STORE_PATH": folder.appendingPathComponent("twin.sqlite").path,
            "DTWIN_SPOOL_PATH": folder.appendingPathComponent("spool").path, "HOME": folder.path,
        ]
        let ok = try await DTwinBinary.run(["check-config"], environment: good)
        #expect(ok.code == 0 && ok.output.contains("configuration OK"), "\(ok.output)")
        #expect(ok.output.contains("dtwin \(DTwinVersion.current)"), "it says what the bridge would run with: \(ok.output)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: folder.path).isEmpty, "nothing was created")

        let bad = try await DTwinBinary.run(
            ["check-config"],
            environment: good.merging([
                "DTWIN_STORE_PATH": "/nonexistent/twin.sqlite", "TWILIO_ACCOUNT_SID": "AC" + String(repeating: "a", count: 32),
            ]) { $1 })
        #expect(bad.code == 2, "a setting to change: exit 2, as for the bridge")
        #expect(bad.output.contains("TWILIO_AUTH_TOKEN"), "every problem is listed: \(bad.output)")
        #expect(bad.output.contains(#"store.path: the folder "/nonexistent" does not exist"#), "\(bad.output)")
        let phone = try await DTwinBinary.run(
            ["check-config"], environment: good.merging(["DTWIN_DEVICES": #"{"uno1": {"phones": ["555"]}}"#]) { $1 })
        #expect(phone.code == 2 && phone.output.contains("devices.uno1.phones"), "\(phone.output)")
        let aws = try await DTwinBinary.run(["check-config"], environment: good.merging(["DTWIN_STORE_KIND": "dynamodb"]) { $1 })
        #expect(aws.code == 2 && aws.output.contains("store.kind: needs AWS credentials"), "\(aws.output)")
        let broken = try await DTwinBinary.run(["check-config"], environment: good.merging(["DTWIN_UPSTREAM_MODE": "cloud"]) { $1 })
        #expect(broken.code == 2 && broken.output.contains("DTWIN_UPSTREAM_MODE"), "\(broken.output)")
    }

    @Test func thePackageInstallsEachFileWhereItBelongs() async throws {
        let folder = try makeTemporaryFolder("dtwin-deb")
        defer { try? FileManager.default.removeItem(at: folder) }
        let build = try await GeneratedBroker.run(
            "/bin/bash",
            [ProjectFolder.file("packaging/build-deb.sh").path, "--binary", DTwinBinary.path, "--compression", "none", folder.path])
        #expect(build.code == 0, "\(build.errors)")
        let package = build.output.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(package.hasSuffix(".deb") && FileManager.default.fileExists(atPath: package), "\(build.output)")
        let info = try await GeneratedBroker.run("/usr/bin/dpkg-deb", ["--info", package])
        #expect(info.output.contains("Package: dtwin") && info.output.contains("Depends: libmosquitto1"), "\(info.output)")
        let conffiles = try await GeneratedBroker.run("/usr/bin/dpkg-deb", ["--field", package, "Package"])
        #expect(conffiles.output.trimmingCharacters(in: .whitespacesAndNewlines) == "dtwin")
        let listed = try await GeneratedBroker.run("/bin/bash", ["-c", "dpkg-deb --ctrl-tarfile \"$0\" | tar -xO ./conffiles", package])
        #expect(listed.output == "/etc/dtwin/dtwin.yaml\n", "the configuration is a conffile: \(listed.output)\(listed.errors)")

        // Into a throwaway root, as dpkg would unpack it.
        let root = folder.appendingPathComponent("root")
        let unpack = try await GeneratedBroker.run("/usr/bin/dpkg-deb", ["--extract", package, root.path])
        #expect(unpack.code == 0, "\(unpack.errors)")
        let expected: [(String, Int)] = [
            ("usr/bin/dtwin", 0o755), ("lib/systemd/system/dtwin.service", 0o644), ("lib/systemd/system/dtwin@.service", 0o644),
            ("etc/dtwin/dtwin.yaml", 0o644),
            ("usr/share/dtwin/broker-config/setup.sh", 0o755), ("usr/share/dtwin/broker-config/add-device.sh", 0o755),
            ("usr/share/dtwin/broker-config/remove-device.sh", 0o755), ("usr/share/dtwin/broker-config/lib.sh", 0o644),
            ("usr/share/doc/dtwin/README.md", 0o644),
        ]
        for (path, mode) in expected {
            let attributes = try? FileManager.default.attributesOfItem(atPath: root.appendingPathComponent(path).path)
            #expect((attributes?[.posixPermissions] as? Int) == mode, "\(path): \(String(describing: attributes?[.posixPermissions]))")
        }
        // The template of several instances verifies as an instance, and names it.
        let template = try String(contentsOf: root.appendingPathComponent("lib/systemd/system/dtwin@.service"), encoding: .utf8)
        #expect(template.contains("Environment=DTWIN_INSTANCE=%i\nExecStart=") && template.contains("User=dtwin"), "\(template)")
        #expect(template.contains("EnvironmentFile=-/etc/dtwin/dtwin.env\nEnvironmentFile=-/etc/dtwin/%i.env"), "\(template)")
        let instance = folder.appendingPathComponent("dtwin@gw-1.service")
        try template.replacingOccurrences(of: "/usr/bin/dtwin", with: DTwinBinary.path).write(to: instance, atomically: true, encoding: .utf8)
        let verify = try await GeneratedBroker.run("/usr/bin/systemd-analyze", ["verify", instance.path])
        #expect(verify.code == 0 && verify.errors.isEmpty, "\(verify.output)\(verify.errors)")
        // The installed binary runs, and the default configuration it ships is one it accepts.
        let installed = root.appendingPathComponent("usr/bin/dtwin").path
        let version = try await GeneratedBroker.run(installed, ["--version"])
        #expect(version.code == 0 && version.output.contains(DTwinVersion.current), "\(version.output)\(version.errors)")
        let check = try await GeneratedBroker.run(
            installed, ["check-config", "--config", root.appendingPathComponent("etc/dtwin/dtwin.yaml").path],
            environment: [
                "DTWIN_STORE_PATH": folder.appendingPathComponent("s.sqlite").path, "DTWIN_SPOOL_PATH": folder.appendingPathComponent("spool").path,
            ])
        #expect(check.code == 0 && check.output.contains("configuration OK"), "\(check.output)\(check.errors)")
        // The broker tools find their shared file where they were installed.
        let setup = try await GeneratedBroker.run(
            "/bin/bash", [root.appendingPathComponent("usr/share/dtwin/broker-config/setup.sh").path, "--help"])
        #expect(setup.code == 2 && setup.errors.contains("usage:"), "\(setup.errors)")
    }

    /// Under systemd (`Type=notify`): READY=1 once it runs, WATCHDOG=1 at half of WATCHDOG_USEC,
    /// STATUS= lines, STOPPING=1 when it stops. A datagram socket of the test's stands in for
    /// systemd's.
    @Test func itTellsSystemdWhenItIsReadyAliveAndStopping() async throws {
        let setup = try TwilioBridgeProcess("dtwin-notify")
        defer { setup.cleanUp() }
        let socketPath = setup.folder.appendingPathComponent("notify").path
        let listener = try DatagramListener(path: socketPath)
        let bridge = try await setup.start(connected: true, extra: ["NOTIFY_SOCKET": socketPath, "WATCHDOG_USEC": "1000000"])
        #expect(await waitUntil(timeout: .seconds(15)) { listener.messages.contains { $0.contains("READY=1") } }, "\(bridge.output)")
        #expect(listener.messages.first?.contains("READY=1") == true, "ready comes first: \(listener.messages)")
        #expect(await waitUntil(timeout: .seconds(10)) { listener.messages.filter { $0.contains("WATCHDOG=1") }.count >= 2 })
        #expect(listener.messages.contains { $0.contains("STATUS=running") }, "\(listener.messages)")
        bridge.process.signal(SIGTERM)
        #expect(await bridge.finish() == 0)
        #expect(await waitUntil(timeout: .seconds(5)) { listener.messages.last?.contains("STOPPING=1") == true }, "\(listener.messages)")
        // Without a watchdog it reports every 10 s; a stop does not wait for the next report.
        let quiet = try await setup.start(connected: true, extra: ["NOTIFY_SOCKET": socketPath])
        #expect(await waitUntil(timeout: .seconds(15)) { listener.messages.filter { $0.contains("READY=1") }.count == 2 })
        quiet.process.signal(SIGTERM)
        #expect(await quiet.process.exited(within: .seconds(6)), "the stop waited for the notifier's next report")
        #expect(await quiet.finish() == 0)
        listener.close()
    }
}

/// A Unix datagram socket that keeps what it receives, read on a thread of its own.
final class DatagramListener: @unchecked Sendable {
    // @unchecked: the file descriptor is only read by the reader thread; `received` is locked.
    private let fd: Int32
    private let lock = NSLock()
    private var received: [String] = []
    private var stopped = false

    init(path: String) throws {
        fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue), 0)
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { buffer in
            for (index, byte) in path.utf8.enumerated() where index < buffer.count - 1 { buffer[index] = byte }
        }
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard fd >= 0, bound == 0 else { throw TestSupportError("cannot bind a datagram socket at \(path): errno \(errno)") }
        var timeout = timeval(tv_sec: 0, tv_usec: 200_000)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        Thread { [self] in
            var buffer = [UInt8](repeating: 0, count: 4096)
            defer { Foundation.close(fd) }
            while !lock.withLock({ stopped }) {
                let count = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
                if count > 0 {
                    let text = String(decoding: buffer.prefix(count), as: UTF8.self)
                    lock.withLock { received.append(text) }
                } else if count == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
                    return
                }
            }
        }.start()
    }

    var messages: [String] { lock.withLock { received } }

    /// Stops reading within 0.2 s (the receive timeout); the reader closes the socket.
    func close() { lock.withLock { stopped = true } }
}
