import DTwinBridge
import DTwinContract
import Foundation
import Logging

// GET and PATCH /api/devices/<dev>/state: the device's twin (README: "The twin").
extension DeviceAPI {
    /// The document as the API shows it: the stored fields and the delta.
    struct StateView: Encodable {
        var device: String
        var version: Int64
        var desired: [String: JSONValue]
        var reported: [String: JSONValue]
        var delta: [String: JSONValue]
        var pending: [String: TwinDocument.Pending]
        var desiredAt: [String: Int64]
        var reportedAt: [String: Int64]

        init(_ document: TwinDocument) {
            device = document.device
            version = document.version
            desired = document.desired
            reported = document.reported
            delta = document.delta
            pending = document.pending
            desiredAt = document.desiredAt
            reportedAt = document.reportedAt
        }
    }

    public func state(_ request: WebhookRequest, device text: String) async -> WebhookAnswer {
        let device: DeviceName
        do throws(Refusal) { device = try Self.device(text) } catch { return error.answer }
        guard let twins else { return Self.error(501, storeAbsence) }
        do {
            let document = try await withDeadline(Self.storeDeadline) { try await twins.document(device) }
            return Self.json(200, StateView(document))
        } catch {
            return storeUnavailable(error)
        }
    }

    /// `{"desired": {...}}`, applied to the version in `If-Match` (412 when the twin has moved
    /// on) or, without it, to the current version.
    public func setState(_ request: WebhookRequest, device text: String) async -> WebhookAnswer {
        let device: DeviceName
        let patch: [String: JSONValue]
        var ifVersion: Int64?
        do throws(Refusal) {
            device = try Self.device(text)
            let object: [String: JSONValue]
            switch TwinLimits.parseObject(request.body) {
            case .success(let parsed): object = parsed
            case .failure(let refusal): throw Refusal(refusal.description.contains("bytes;") ? 413 : 400, refusal.description)
            }
            guard case .object(let desired)? = object["desired"], object.count == 1 else {
                throw Refusal(400, #"the body must be {"desired": {...}}, like {"desired": {"led": true}}"#)
            }
            patch = desired
            if let match = request.headers["if-match"] {
                guard let version = Int64(match.trimmingCharacters(in: ["\"", " ", "W", "/"])) else {
                    throw Refusal(400, "If-Match must be the twin's version, a whole number (GET the state to read it)")
                }
                ifVersion = version
            }
        } catch {
            return error.answer
        }
        guard let twins else { return Self.error(501, storeAbsence) }
        let expected = ifVersion
        do {
            let result = try await withDeadline(Self.storeDeadline) { try await twins.setDesired(patch, for: device, ifVersion: expected) }
            switch result {
            case .success(let document):
                logger.info("twin desired state set", metadata: ["device": "\(device)", "version": "\(document.version)"])
                return Self.json(200, StateView(document))
            case .failure(.staleVersion(let current)):
                return Self.error(412, "\(TwinRefusal.staleVersion(current: current)): GET the state and try again with If-Match: \(current)")
            case .failure(let refusal):
                return Self.error(400, refusal.description)
            }
        } catch {
            return storeUnavailable(error)
        }
    }
}
