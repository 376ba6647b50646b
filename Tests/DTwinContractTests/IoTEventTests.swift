import DTwinContract
import DTwinTestSupport
import Foundation
import Testing

@Suite struct IoTEventTests {
    func message(_ payload: [UInt8], device: String = "uno1") throws -> DeviceMessage {
        var generator = SplitMix64(seed: 3)
        return DeviceMessage(
            id: MessageID(millis: 1_700_000_000_123, using: &generator), device: try DeviceName(validating: device),
            topic: "dtwin/\(device)/up", payload: payload, receivedAtMillis: 1_700_000_000_123)
    }

    @Test func carriesTheDesignParametersInOrder() throws {
        let message = try message(Array("sim-uno1 data 512".utf8))
        let event = IoTEvent(message: message)
        #expect(
            event.parameters.map(\.name) == [
                "SimUniqueName", "Payload", "PayloadType", "Direction", "Status", "MessageId", "Topic", "ReceivedAt", "Source",
            ])
        #expect(event["SimUniqueName"] == "uno1")
        #expect(event["Payload"] == Data("sim-uno1 data 512".utf8).base64EncodedString())
        #expect(event["PayloadType"] == "binary")
        #expect(event["Direction"] == "from_sim")
        #expect(event["Status"] == "received")
        #expect(event["MessageId"] == message.id.rawValue)
        #expect(event["Topic"] == "dtwin/uno1/up")
        #expect(event["ReceivedAt"] == "2023-11-14T22:13:20.123Z")
        #expect(event["Source"] == "mqtt")
    }

    @Test func everyByteValueSurvivesTheQueryString() throws {
        let bytes = (0...255).map(UInt8.init) + [0, 0xFF]
        let event = IoTEvent(message: try message(bytes))
        // Decode with Foundation's URL parser, not with dtwin's own code.
        let components = try #require(URLComponents(string: "http://h/p?" + event.formEncoded))
        let decoded = Dictionary(uniqueKeysWithValues: try #require(components.queryItems).map { ($0.name, $0.value ?? "") })
        #expect(decoded == event.dictionary)
        #expect(Data(base64Encoded: try #require(decoded["Payload"])) == Data(bytes))
    }

    @Test func proxyEventReadsAWSSampleEvents() throws {
        // The model must read what API Gateway really sends (aws-lambda-go's sample).
        let sample = try JSONDecoder().decode(APIGatewayProxyEvent.self, from: SharedTestData.data("apigw/apigw-request.json"))
        #expect(sample.queryStringParameters == ["name": "me"])
        #expect(sample.httpMethod == "POST")
        #expect(sample.requestContext?.requestId == "deef4878-7910-11e6-8f14-25afc3e9ae33")
    }

    @Test func proxyEventHasTheShapeOfAWSSample() throws {
        let event = IoTEvent(message: try message(Array("x".utf8))).proxyEvent()
        let ours = try #require(JSONSerialization.jsonObject(with: JSONEncoder().encode(event)) as? [String: Any])
        let sample = try #require(
            JSONSerialization.jsonObject(with: SharedTestData.data("apigw/apigw-request.json")) as? [String: Any])
        // Every top-level field we send is one API Gateway sends (isBase64Encoded is in real
        // events, though not in this older sample), with the same JSON type.
        for (key, value) in ours where key != "isBase64Encoded" {
            let theirs = try #require(sample[key], "AWS's sample has no \(key)")
            if !(value is NSNull) {
                #expect(
                    type(of: value as AnyObject) == type(of: theirs as AnyObject) || (value is [String: Any] && theirs is [String: Any]), "\(key)")
            }
        }
        for required in ["resource", "path", "httpMethod", "headers", "queryStringParameters", "requestContext", "body"] {
            #expect(ours[required] != nil, "\(required) missing")
        }
        let context = try #require(ours["requestContext"] as? [String: Any])
        let sampleContext = try #require(sample["requestContext"] as? [String: Any])
        for key in context.keys { #expect(sampleContext[key] != nil, "requestContext.\(key) is not an API Gateway field") }
    }

    @Test func proxyEventRoundTripsToTheSameParameters() throws {
        let event = IoTEvent(message: try message([1, 2, 3]))
        let json = try JSONEncoder().encode(event.proxyEvent(httpMethod: "POST"))
        let decoded = try JSONDecoder().decode(APIGatewayProxyEvent.self, from: json)
        #expect(decoded.httpMethod == "POST")
        #expect(decoded.multiValueQueryStringParameters?["SimUniqueName"] == ["uno1"])
        #expect(IoTEvent(proxyEvent: decoded) == event)
    }

    @Test func aProxyEventWithoutADeviceIsNotAnIoTEvent() throws {
        let sample = try JSONDecoder().decode(APIGatewayProxyEvent.self, from: SharedTestData.data("apigw/apigw-request.json"))
        #expect(IoTEvent(proxyEvent: sample) == nil)
    }

    @Test func consoleTestEventDecodesFromTheSeedJSON() throws {
        let json = #"{"testuser": "kilroy", "testdata": "3.14", "isIOT": "False"}"#
        #expect(try JSONDecoder().decode(ConsoleTestEvent.self, from: Data(json.utf8)) == .seed)
    }
}

@Suite struct TwinItemTests {
    func event(_ payload: [UInt8]) throws -> IoTEvent {
        var generator = SplitMix64(seed: 4)
        return IoTEvent(
            message: DeviceMessage(
                id: MessageID(millis: 1_700_000_000_000, using: &generator), device: try DeviceName(validating: "a"),
                topic: "dtwin/a/up", payload: payload, receivedAtMillis: 1_700_000_000_000))
    }

    @Test func aJSONReadingBecomesAReadingItem() throws {
        let item = try TwinItem.from(event: event(Array(#"{"value": 12.5, "seq": 3, "ts": 1600000000000}"#.utf8))).get()
        #expect(item.kind == .reading)
        #expect(item.value == 12.5)
        #expect(item.seq == 3)
        #expect(item.ts == "2020-09-13T12:26:40.000Z")  // the device's own time
        #expect(item.device == "a")
        #expect(item.source == "mqtt")
        #expect(item.payloadEncoding == nil)
    }

    @Test func binaryIsStoredAsBase64() throws {
        let item = try TwinItem.from(event: event([0xFF, 0x00])).get()
        #expect(item.kind == .raw)
        #expect(item.payload == "/wA=")
        #expect(item.payloadEncoding == "base64")
        #expect(item.ts == "2023-11-14T22:13:20.000Z")  // arrival time
    }

    @Test func anEventWithABadDeviceIsRefused() throws {
        let bad = IoTEvent(
            proxyEvent: APIGatewayProxyEvent(queryStringParameters: ["SimUniqueName": "a/#", "Payload": "eA=="]))
        let result = TwinItem.from(event: try #require(bad))
        guard case .failure(let error) = result else {
            Issue.record("accepted a bad device name")
            return
        }
        #expect(error.reason.contains("invalid device name"))
    }
}

extension APIGatewayProxyEvent {
    init(queryStringParameters: [String: String]) {
        self = try! JSONDecoder().decode(APIGatewayProxyEvent.self, from: Data("{}".utf8))
        self.queryStringParameters = queryStringParameters
    }
}
