/// What became of one attempt to deliver a device message upstream (README: "The IoT event").
public enum DeliveryOutcome: Sendable, Equatable {
    /// A 2xx answer. `reply`, when present, is published on the device's `down` topic;
    /// `desired`, when present, is set in the device's twin (``TwinDocument``); `note` says why
    /// an answer had no usable reply (not JSON, `reply` not a string, …).
    case delivered(reply: String?, note: String?, desired: [String: JSONValue]? = nil)
    /// 5xx, 408, 429, timeouts, refused connections: try again later.
    case retry(reason: String)
    /// Any other answer: the message goes to the dead letter topic with this reason.
    case reject(reason: String)
}

/// Turns upstream answers into ``DeliveryOutcome``s. Pure: status and bytes in, outcome out.
public enum UpstreamAnswer {
    /// The longest piece of an upstream body quoted in a reason or log line.
    static let quoteLimit = 200

    /// An HTTP answer (`apigw` mode): the body itself may carry `{"reply": "..."}`.
    public static func classify(status: Int, body: [UInt8]) -> DeliveryOutcome {
        switch status {
        case 200..<300:
            let answer = answer(inBody: body)
            return .delivered(reply: answer.reply, note: answer.note, desired: answer.desired)
        case 408, 429, 500..<600:
            return .retry(reason: "upstream answered \(status)\(quote(body))")
        case 300..<400:
            return .reject(reason: "upstream answered \(status) (a redirect; dtwin does not follow them: check the URL)")
        default:
            return .reject(reason: "upstream answered \(status)\(quote(body))")
        }
    }

    /// A Lambda's result (`lambda` and `local` modes): an API Gateway proxy response
    /// (`{"statusCode": 200, "body": "{\"reply\": …}"}`), the seed's `{"payload": …}`, or a bare
    /// `{"reply": …}` object.
    public static func classifyLambdaResult(_ bytes: [UInt8]) -> DeliveryOutcome {
        guard let json = JSONValue.parse(bytes), case .object(let object) = json else {
            if bytes.isEmpty || JSONValue.parse(bytes) == .null { return .delivered(reply: nil, note: nil) }
            return .delivered(reply: nil, note: "the function's result is not a JSON object\(quote(bytes))")
        }
        if let status = object["statusCode"] {
            guard let code = status.numberValue, let int = Int(exactly: code) else {
                return .reject(reason: "the function's statusCode is not an integer")
            }
            let body = object["body"]?.stringValue.map { Array($0.utf8) } ?? []
            return classify(status: int, body: body)
        }
        let answer = answer(in: object["payload"] ?? json)
        return .delivered(reply: answer.reply, note: answer.note, desired: answer.desired)
    }

    /// What a 2xx answer asks for: a reply for the device and a desired state for its twin.
    public typealias Answer = (reply: String?, note: String?, desired: [String: JSONValue]?)

    /// Finds `{"reply": "...", "desired": {...}}` in an answer body.
    public static func answer(inBody body: [UInt8]) -> Answer {
        guard let first = body.first(where: { !isJSONWhitespace($0) }) else { return (nil, nil, nil) }
        // Most answers carry neither: only a body that mentions "reply" or "desired" is worth
        // parsing (this is on the hot path of every delivery). A body that does not even start
        // like JSON is noted without parsing it.
        guard contains(replyKey, in: body) || contains(desiredKey, in: body) else {
            return startsLikeJSON(first) ? (nil, nil, nil) : (nil, notJSON(body), nil)
        }
        guard let json = JSONValue.parse(body) else { return (nil, notJSON(body), nil) }
        return answer(in: json)
    }

    /// A JSON object with a string `reply` and/or an object `desired`, or a JSON string that
    /// holds such an object.
    static func answer(in json: JSONValue) -> Answer {
        if case .string(let text) = json, let inner = JSONValue.parse(text.utf8) {
            return answer(in: inner)
        }
        guard case .object(let object) = json else { return (nil, nil, nil) }
        var desired: [String: JSONValue]?
        if case .object(let wanted)? = object["desired"], !wanted.isEmpty { desired = wanted }
        guard let value = object["reply"], !value.isNull else { return (nil, nil, desired) }
        guard let text = value.stringValue else { return (nil, "\"reply\" is not a string; nothing sent to the device", desired) }
        return (text.isEmpty ? nil : text, nil, desired)
    }

    static let replyKey = Array(#""reply""#.utf8)
    static let desiredKey = Array(#""desired""#.utf8)

    /// A plain byte search: the standard library's `contains(_:)` for collections is generic
    /// and showed up in the benchmark's profile.
    static func contains(_ key: [UInt8], in body: [UInt8]) -> Bool {
        guard body.count >= key.count else { return false }
        return body.withUnsafeBufferPointer { bytes in
            for start in 0...(bytes.count - key.count) where bytes[start] == key[0] {
                if key.indices.allSatisfy({ bytes[start + $0] == key[$0] }) { return true }
            }
            return false
        }
    }

    static func isJSONWhitespace(_ byte: UInt8) -> Bool { byte == 0x20 || byte == 0x0A || byte == 0x0D || byte == 0x09 }

    /// `{`, `[`, `"`, a digit, `-`, or the first letter of true/false/null.
    static func startsLikeJSON(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "{"), UInt8(ascii: "["), UInt8(ascii: "\""), UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"),
            UInt8(ascii: "t"), UInt8(ascii: "f"), UInt8(ascii: "n"):
            return true
        default:
            return false
        }
    }

    static func notJSON(_ body: [UInt8]) -> String {
        "the answer is not JSON, so it carries no reply\(quote(body))"
    }

    static func quote(_ body: [UInt8]) -> String {
        guard !body.isEmpty else { return "" }
        let text = String(decoding: body.prefix(quoteLimit), as: UTF8.self)
            .replacingNewlines()
        return ": " + text + (body.count > quoteLimit ? "…" : "")
    }
}

extension String {
    fileprivate func replacingNewlines() -> String {
        String(map { $0 == "\n" || $0 == "\r" ? " " : $0 })
    }
}
