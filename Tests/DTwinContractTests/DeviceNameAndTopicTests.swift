import DTwinContract
import Testing

@Suite struct DeviceNameTests {
    @Test(arguments: ["a", "uno1", "UNO_1", "sim-7000", String(repeating: "x", count: 64), "0", "-", "_"])
    func acceptsValidNames(_ name: String) throws {
        #expect(try DeviceName(validating: name).rawValue == name)
    }

    @Test(arguments: [
        ("", "is empty"), (String(repeating: "x", count: 65), "longer than 64"), ("a+b", "'+'"), ("#", "'#'"),
        ("a/b", "'/'"), ("a b", "' '"), ("café", "non-ASCII"), ("a.b", "'.'"), ("bridge", "reserved"),
        ("a\u{0}b", "'\u{0}'"),
    ])
    func rejectsInvalidNamesWithAReason(_ name: String, _ reason: String) {
        #expect(throws: InvalidDeviceName.self) { try DeviceName(validating: name) }
        do {
            _ = try DeviceName(validating: name)
        } catch {
            #expect(error.reason.contains(reason), "\(error.reason)")
            #expect(error.description.hasPrefix("invalid device name"))
        }
        #expect(DeviceName(name) == nil)
    }

    @Test func descriptionOfAHugeNameIsCutShort() {
        let huge = String(repeating: "y", count: 10_000)
        do {
            _ = try DeviceName(validating: huge)
            Issue.record("a 10,000-character name was accepted")
        } catch {
            #expect(error.description.count < 200)
        }
    }
}

@Suite struct TopicTreeTests {
    let tree = try! TopicTree()

    @Test func buildsTheDesignTopics() throws {
        let device = try DeviceName(validating: "uno1")
        #expect(tree.up(device) == "dtwin/uno1/up")
        #expect(tree.down(device) == "dtwin/uno1/down")
        #expect(tree.status(device) == "dtwin/uno1/status")
        #expect(tree.sms(device) == "dtwin/uno1/sms")
        #expect(tree.bridgeStatus == "dtwin/bridge/status")
        #expect(tree.deadLetter == "dtwin/bridge/deadletter")
        #expect(tree.state(device) == "dtwin/uno1/state")
        #expect(tree.stateSet(device) == "dtwin/uno1/state/set")
        #expect(tree.stateRejected(device) == "dtwin/uno1/state/rejected")
        #expect(tree.bridgeSubscriptions == ["dtwin/+/up", "dtwin/+/status", "dtwin/+/sms", "dtwin/+/state/set"])
    }

    @Test func parsesTwinTopics() {
        let uno1 = DeviceName("uno1")!
        #expect(tree.parse("dtwin/uno1/state") == .twin(uno1, .document))
        #expect(tree.parse("dtwin/uno1/state/set") == .twin(uno1, .set))
        #expect(tree.parse("dtwin/uno1/state/rejected") == .twin(uno1, .rejected))
        for outside in ["dtwin/uno1/state/other", "dtwin/uno1/state/set/x", "dtwin/bad.name/state/set", "dtwin/bridge/state"] {
            guard case .outsideTree = tree.parse(outside) else {
                Issue.record("\(outside) should be outside the tree, got \(tree.parse(outside))")
                continue
            }
        }
    }

    @Test func parsesDeviceTopics() throws {
        for kind in ["up", "down", "status", "sms"] {
            guard case .device(let topic) = tree.parse("dtwin/uno1/\(kind)") else {
                Issue.record("dtwin/uno1/\(kind) not parsed as a device topic")
                continue
            }
            #expect(topic.device.rawValue == "uno1")
            #expect(topic.kind.rawValue == kind)
        }
    }

    @Test func parsesTheBridgesOwnTopics() {
        #expect(tree.parse("dtwin/bridge/status") == .bridgeStatus)
        #expect(tree.parse("dtwin/bridge/deadletter") == .deadLetter)
        guard case .invalidDevice(let error, .up) = tree.parse("dtwin/bridge/up") else {
            Issue.record("dtwin/bridge/up must be rejected: bridge is reserved")
            return
        }
        #expect(error.reason.contains("reserved"))
    }

    @Test(arguments: ["other/uno1/up", "dtwin/uno1", "dtwin/uno1/up/extra", "dtwin/uno1/sideways", "dtwin", "dtwinx/a/up", "dtwin//up"])
    func rejectsTopicsOutsideTheTree(_ topic: String) {
        switch tree.parse(topic) {
        case .outsideTree: break
        case .invalidDevice where topic == "dtwin//up": break  // an empty device level
        default: Issue.record("\(topic) should be outside the tree, got \(tree.parse(topic))")
        }
    }

    @Test func reportsInvalidDeviceNamesInTopics() {
        guard case .invalidDevice(let error, .up) = tree.parse("dtwin/bad.name/up") else {
            Issue.record("dtwin/bad.name/up should be an invalid device")
            return
        }
        #expect(error.name == "bad.name")
    }

    @Test func supportsMultiLevelPrefixes() throws {
        let lab = try TopicTree(prefix: "lab/dtwin")
        guard case .device(let topic) = lab.parse("lab/dtwin/a/up") else {
            Issue.record("multi-level prefix not parsed")
            return
        }
        #expect(topic.device.rawValue == "a")
        guard case .outsideTree = lab.parse("dtwin/a/up") else {
            Issue.record("another prefix accepted")
            return
        }
    }

    @Test(arguments: ["", "a/+", "#", "/dtwin", "dtwin/", "a//b"])
    func rejectsBadPrefixes(_ prefix: String) {
        #expect(throws: InvalidTopicPrefix.self) { try TopicTree(prefix: prefix) }
    }
}

/// The one rule for a device command: the command line, the API and SMS all apply it.
@Suite struct DeviceCommandTests {
    @Test(arguments: ["LIG", "  LED ON \n", "PERIOD 60", "é", String(repeating: "L", count: 1024)])
    func aSensibleCommandIsAccepted(_ text: String) throws {
        let command = try DeviceCommand(validating: text)
        #expect(command.text == String(text.trimmingWhitespace()))
    }

    @Test(arguments: [("", "empty"), ("   ", "empty"), ("a\nb", "control"), ("LIG\u{0}", "control"), ("\u{7F}", "control")])
    func aBadCommandIsRefusedSayingWhy(_ text: String, _ words: String) {
        #expect(throws: InvalidDeviceCommand.self) { try DeviceCommand(validating: text) }
        do { _ = try DeviceCommand(validating: text) } catch { #expect(error.reason.contains(words) && !error.tooLong) }
    }

    @Test func anOverlongCommandIsMarkedSo() {
        do {
            _ = try DeviceCommand(validating: String(repeating: "L", count: 1025))
            Issue.record("1025 bytes were accepted")
        } catch {
            #expect(error.tooLong && error.reason.contains("1024"))
        }
    }
}
