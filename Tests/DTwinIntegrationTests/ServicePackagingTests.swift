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
            ("usr/bin/dtwin", 0o755), ("lib/systemd/system/dtwin.service", 0o644), ("etc/dtwin/dtwin.yaml", 0o644),
            ("usr/share/dtwin/broker-config/setup.sh", 0o755), ("usr/share/dtwin/broker-config/add-device.sh", 0o755),
            ("usr/share/dtwin/broker-config/remove-device.sh", 0o755), ("usr/share/dtwin/broker-config/lib.sh", 0o644),
            ("usr/share/doc/dtwin/README.md", 0o644),
        ]
        for (path, mode) in expected {
            let attributes = try? FileManager.default.attributesOfItem(atPath: root.appendingPathComponent(path).path)
            #expect((attributes?[.posixPermissions] as? Int) == mode, "\(path): \(String(describing: attributes?[.posixPermissions]))")
        }
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
}
