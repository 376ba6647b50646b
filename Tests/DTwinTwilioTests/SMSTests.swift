import DTwinContract
import DTwinTestSupport
import Testing

@testable import DTwinTwilio

struct SMSRequestTests {
    static let a = DeviceName("a")!

    @Test(arguments: [
        ("@a LIG", SMSRequest.command("LIG", to: a)),
        ("  @a   turn on now ", .command("turn on now", to: a)),
        ("a: LIG", .command("LIG", to: a)),
        ("a:LIG", .command("LIG", to: a)),
        ("LIG", .command("LIG", to: nil)),
        ("blink twice", .command("blink twice", to: nil)),
        ("STATUS a", .status(a)),
        ("status  a", .status(a)),
        ("STATUS", .status(nil)),
        ("HELP", .help),
        ("help", .help),
        ("", .empty),
        ("  \n ", .empty),
        ("@a", .missingCommand(a)),
        ("a:", .missingCommand(a)),
    ])
    func parses(_ body: String, _ expected: SMSRequest) {
        #expect(SMSRequest.parse(body) == expected)
    }

    /// Topic injection: every one of these names a device that cannot exist.
    @Test(arguments: ["@a/# X", "@+ X", "@# X", "@ X", "@a/b X", "a/#: X", "+: X", "STATUS a/b", "STATUS #", "@bridge X"])
    func refusesNamesThatAreNotDeviceNames(_ body: String) {
        guard case .invalidDevice = SMSRequest.parse(body) else {
            Issue.record("\(body.debugDescription) parsed as \(SMSRequest.parse(body))")
            return
        }
    }

    @Test func helpWithMoreWordsIsACommand() {
        #expect(SMSRequest.parse("HELP me") == .command("HELP me", to: nil))
    }
}

struct SMSAddressingTests {
    static let a = DeviceName("a")!
    static let b = DeviceName("b")!
    static let alice = PhoneNumber("+12065550100")!
    static let bob = PhoneNumber("+12065550111")!
    static let stranger = PhoneNumber("+12065550199")!
    static let book = SMSAddressBook(phonesByDevice: [a: [alice, bob], b: [alice]])

    func decide(_ body: String, from sender: PhoneNumber?, lastNotified: DeviceName? = nil) -> SMSAction {
        SMSAddressing.decide(SMSRequest.parse(body), from: sender, book: Self.book, lastNotified: lastNotified)
    }

    @Test func anAllowedSenderCommandsANamedDevice() {
        #expect(decide("@b LIG", from: Self.alice) == .command("LIG", device: Self.b, reply: "Sent to b: LIG"))
        #expect(decide("a: ACK", from: Self.bob) == .command("ACK", device: Self.a, reply: "Sent to a: ACK"))
    }

    @Test func aSenderNotOnTheDevicesListIsRefused() {
        guard case .refuse(let text, _) = decide("@b LIG", from: Self.bob) else {
            Issue.record("bob may not command b")
            return
        }
        #expect(text == "Sorry, this number may not command b.")
        // An unknown device gets the same answer: refusals do not reveal which devices exist.
        guard case .refuse(let unknown, _) = decide("@zzz LIG", from: Self.bob) else {
            Issue.record("zzz does not exist")
            return
        }
        #expect(unknown == "Sorry, this number may not command zzz.")
    }

    @Test func strangersAndMissingSendersAreRefusedWhateverTheyAsk() {
        for body in ["@a LIG", "HELP", "STATUS a", "LIG"] {
            for sender in [Self.stranger, nil] {
                guard case .refuse = decide(body, from: sender) else {
                    Issue.record("\(body) from \(String(describing: sender)) was not refused")
                    continue
                }
            }
        }
    }

    @Test func aBareCommandGoesToTheOnlyDeviceOrTheLastOneThatTexted() {
        // bob may command only a.
        #expect(decide("LIG", from: Self.bob) == .command("LIG", device: Self.a, reply: "Sent to a: LIG"))
        // alice may command a and b: she must say which, unless one of them texted her last.
        guard case .reply(let question) = decide("LIG", from: Self.alice) else {
            Issue.record("alice's bare command is ambiguous")
            return
        }
        #expect(question.contains("Which device?") && question.contains("a, b"))
        #expect(decide("LIG", from: Self.alice, lastNotified: Self.b) == .command("LIG", device: Self.b, reply: "Sent to b: LIG"))
        // A last notifier she may not command does not count.
        #expect(decide("LIG", from: Self.bob, lastNotified: Self.b) == .command("LIG", device: Self.a, reply: "Sent to a: LIG"))
    }

    /// The one rule for commands (DeviceCommand), as the API and `dtwin send` apply it.
    @Test func aCommandTheAPIWouldRefuseIsNotSentBySMSEither() {
        for body in ["@a LIG\u{1}", "@a " + String(repeating: "L", count: 1025)] {
            guard case .refuse(let text, _) = decide(body, from: Self.alice) else {
                Issue.record("\(body.prefix(12).debugDescription) was sent")
                continue
            }
            #expect(text.hasPrefix("Not sent:"), "\(text)")
        }
    }

    @Test func statusAndHelp() {
        #expect(decide("STATUS b", from: Self.alice) == .status(Self.b))
        #expect(decide("STATUS", from: Self.bob) == .status(Self.a))
        guard case .reply(let help) = decide("HELP", from: Self.alice) else {
            Issue.record("HELP answers")
            return
        }
        #expect(help.contains("@device command") && help.contains("Your devices: a, b."))
    }

    /// `SET device key value` sets the twin's desired state, under the same addressing rules as
    /// commands; values are read the way people write them.
    @Test func setAddressesADevicesTwin() {
        #expect(decide("SET b led on", from: Self.alice) == .setDesired(Self.b, key: "led", value: .bool(true)))
        #expect(decide("set a PERIOD 300", from: Self.bob) == .setDesired(Self.a, key: "period", value: .number(300)))
        #expect(decide("SET led off", from: Self.bob) == .setDesired(Self.a, key: "led", value: .bool(false)), "bob's only device")
        #expect(decide("SET a mode eco", from: Self.alice) == .setDesired(Self.a, key: "mode", value: .string("eco")))
        guard case .refuse = decide("SET b led on", from: Self.bob), case .refuse = decide("SET a led on", from: Self.stranger),
            case .refuse = decide("SET a/# led on", from: Self.alice)
        else {
            Issue.record("SET obeys the addressing rules")
            return
        }
        guard case .reply(let usage) = decide("SET", from: Self.alice), case .reply(let which) = decide("SET led on", from: Self.alice) else {
            Issue.record("an incomplete SET, or one without a device for a sender with two, is answered")
            return
        }
        #expect(usage.contains("SET device key value") && which.hasPrefix("Which device?"))
    }

    @Test func injectionAttemptsPublishNothing() {
        for body in ["@a/# X", "@+ X", "@ X", "a/#: X"] {
            guard case .refuse(let text, _) = decide(body, from: Self.alice) else {
                Issue.record("\(body) was not refused")
                continue
            }
            #expect(text.hasPrefix("Sorry, that is not a device name"))
        }
    }
}

struct PhoneNumberTests {
    @Test func separatorsAreIgnoredAndShapeIsChecked() {
        #expect(PhoneNumber("+1 (206) 555-0100") == PhoneNumber("+12065550100"))
        #expect(PhoneNumber("+1.206.555.0100")?.rawValue == "+12065550100")
        #expect(PhoneNumber("12065550100") == nil)
        #expect(PhoneNumber("+1206555010a") == nil)
        #expect(PhoneNumber("+123") == nil)
        #expect(PhoneNumber("") == nil)
        #expect(PhoneNumber("+12065550100")?.masked == "********0100")
    }
}

struct SMSBudgetTests {
    /// Takes a slot; a helper because `#expect` cannot wrap a mutating call.
    func take(_ budget: inout SMSBudget, at now: Int64) -> Bool { budget.take(now: now) }

    @Test func neverMoreThanPerHourInAnySlidingHour() {
        var budget = SMSBudget(perHour: 3)
        let first = [0, 1_000, 2_000, 3_000].map { take(&budget, at: $0) }
        #expect(first == [true, true, true, false])
        let next = budget.nextSlot(now: 3_000)
        #expect(next == SMSBudget.window)
        // One hour after the first: one slot is free again, and only one.
        let later = [SMSBudget.window, SMSBudget.window + 1].map { take(&budget, at: $0) }
        #expect(later == [true, false])
        // The slots taken at 1 s and 2 s free up a second apart.
        let remaining = [SMSBudget.window + 500, SMSBudget.window + 1_000, SMSBudget.window + 2_000].map {
            budget.remaining(now: $0)
        }
        #expect(remaining == [0, 1, 2])
    }

    @Test func aRefusedSMSGivesItsSlotBack() {
        var budget = SMSBudget(perHour: 1)
        let before = [take(&budget, at: 10), take(&budget, at: 20)]
        budget.giveBack(takenAt: 10)
        let after = take(&budget, at: 30)
        #expect(before == [true, false] && after)
    }

    @Test func aZeroBudgetSendsNothing() {
        var budget = SMSBudget(perHour: 0)
        let taken = take(&budget, at: 0)
        #expect(!taken)
    }
}

struct TwiMLTests {
    /// The forms twilio-python's MessagingResponse prints (`../shared/testdata/twilio/twiml_examples.txt`).
    @Test func matchesTwilioPython() throws {
        let examples = String(decoding: try SharedTestData.data("twilio/twiml_examples.txt"), as: UTF8.self)
            .split(separator: "\n").map(String.init)
        #expect(examples.count == 2)
        #expect(examples.first == TwiML.empty)
        #expect(examples.last == TwiML.message("ack: relayed to device"))
    }

    @Test func escapesMarkup() {
        #expect(
            TwiML.message("a < b & c > d")
                == #"<?xml version="1.0" encoding="UTF-8"?><Response><Message>a &lt; b &amp; c &gt; d</Message></Response>"#)
        #expect(TwiML.message("bell\u{7}") == #"<?xml version="1.0" encoding="UTF-8"?><Response><Message>bell</Message></Response>"#)
    }
}

struct CredentialsTests {
    @Test func readsTwilioOrSeedVariablesAndNeverPrintsTheToken() {
        guard case .found(let credentials) = TwilioCredentials.lookup(in: ["TWILIO_ACCOUNT_SID": "AC1", "TWILIO_AUTH_TOKEN": "tok-secret"])
        else {
            Issue.record("credentials expected")
            return
        }
        #expect(credentials.accountSid == "AC1")
        #expect(!"\(credentials)".contains("tok-secret"))
        guard case .found(let seed) = TwilioCredentials.lookup(in: ["acct_id_env": "AC2", "acct_token_env": "t2"]) else {
            Issue.record("the seed's variables are accepted")
            return
        }
        #expect(seed.accountSid == "AC2" && seed.authToken == "t2")
        guard case .absent = TwilioCredentials.lookup(in: [:]) else {
            Issue.record("no variables: dry-run")
            return
        }
        guard case .incomplete(let half) = TwilioCredentials.lookup(in: ["TWILIO_ACCOUNT_SID": "AC1"]) else {
            Issue.record("half the credentials is an error")
            return
        }
        #expect(
            "\(half)"
                == "TWILIO_ACCOUNT_SID is set but TWILIO_AUTH_TOKEN (or acct_token_env) is not: set both to send SMS, or neither for a dry run"
        )
        guard case .incomplete(let seedHalf) = TwilioCredentials.lookup(in: ["acct_token_env": "secret-token"]) else {
            Issue.record("half the seed's credentials is an error")
            return
        }
        #expect("\(seedHalf)".hasPrefix("acct_token_env is set but TWILIO_ACCOUNT_SID (or acct_id_env) is not"))
        #expect(!"\(seedHalf)".contains("secret-token"))
    }
}
