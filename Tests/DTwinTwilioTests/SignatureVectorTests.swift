import DTwinContract
import DTwinTestSupport
import Foundation
import Testing

@testable import DTwinTwilio

/// The official Twilio libraries' signature vectors (`../shared/testdata/twilio_signature_vectors.json`).
/// Where the libraries disagree, the expected answer is twilio-python's (`python_validate_result`;
/// an exception there counts as "invalid").
struct SignatureVectorTests {
    struct Vector: Sendable, CustomTestStringConvertible {
        let name: String
        let url: String
        let parameters: [FormParameter]
        let authToken: String
        let signature: String
        let body: String?
        let pythonAccepts: Bool

        var testDescription: String { name }
    }

    static let vectors: [Vector] = {
        guard let data = try? SharedTestData.data("twilio_signature_vectors.json"),
            let list = try? JSONSerialization.jsonObject(with: data) as? [[String: Any]]
        else { return [] }
        return list.map { entry in
            var parameters: [FormParameter] = []
            for (name, value) in entry["params"] as? [String: Any] ?? [:] {
                let values = (value as? [String]) ?? [value as? String ?? ""]
                parameters += values.map { FormParameter(name: name, value: $0) }
            }
            return Vector(
                name: entry["name"] as! String, url: entry["url"] as! String, parameters: parameters,
                authToken: entry["auth_token"] as! String, signature: entry["signature"] as! String,
                body: entry["body"] as? String, pythonAccepts: entry["python_validate_result"] as? Bool ?? false)
        }
    }()

    @Test func theVectorsAreThere() {
        // 44 cases in the file; a missing or unreadable file must fail, not pass vacuously.
        #expect(Self.vectors.count == 44)
        #expect(Self.vectors.contains { $0.pythonAccepts } && Self.vectors.contains { !$0.pythonAccepts })
    }

    @Test(arguments: vectors)
    func validatesLikeTwilioPython(_ vector: Vector) {
        let validator = TwilioRequestValidator(authToken: vector.authToken)
        let accepted: Bool
        if let body = vector.body {
            accepted = validator.isValid(url: vector.url, body: Array(body.utf8), signature: vector.signature)
        } else {
            accepted = validator.isValid(url: vector.url, parameters: vector.parameters, signature: vector.signature)
        }
        #expect(accepted == vector.pythonAccepts)
    }

    @Test func aSignatureForOneTokenFailsForAnother() {
        let parameters = [FormParameter(name: "Body", value: "@a LIG"), FormParameter(name: "From", value: "+12065550100")]
        let url = "https://bridge.example.com/twilio/sms"
        let signature = TwilioRequestValidator(authToken: "secret-one").signature(url: url, parameters: parameters)
        #expect(TwilioRequestValidator(authToken: "secret-one").isValid(url: url, parameters: parameters, signature: signature))
        #expect(!TwilioRequestValidator(authToken: "secret-two").isValid(url: url, parameters: parameters, signature: signature))
        // Same parameters for another path: the URL is part of what is signed.
        #expect(
            !TwilioRequestValidator(authToken: "secret-one").isValid(
                url: "https://bridge.example.com/twilio/status", parameters: parameters, signature: signature))
    }

    @Test func portVariantsFollowTwilioPython() {
        #expect(TwilioRequestValidator.portVariants(of: "https://h.example/x") == ["https://h.example/x", "https://h.example:443/x"])
        #expect(TwilioRequestValidator.portVariants(of: "http://h.example:8080/x?a=1") == ["http://h.example:8080/x?a=1", "http://h.example/x?a=1"])
        #expect(
            TwilioRequestValidator.portVariants(of: "https://u:p@h.example:1234/x") == ["https://u:p@h.example:1234/x", "https://u:p@h.example/x"])
        #expect(TwilioRequestValidator.portVariants(of: "http://[::1]/x") == ["http://[::1]/x", "http://[::1]:80/x"])
        #expect(TwilioRequestValidator.portVariants(of: "not a url") == ["not a url"])
    }

    @Test func constantTimeEqualComparesLengthAndBytes() {
        #expect(TwilioRequestValidator.constantTimeEqual([1, 2, 3], [1, 2, 3]))
        #expect(!TwilioRequestValidator.constantTimeEqual([1, 2, 3], [1, 2, 4]))
        #expect(!TwilioRequestValidator.constantTimeEqual([1, 2], [1, 2, 3]))
        #expect(TwilioRequestValidator.constantTimeEqual([], []))
    }
}
