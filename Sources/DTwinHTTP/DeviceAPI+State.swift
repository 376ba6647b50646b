import DTwinBridge
import DTwinContract
import Foundation
import Logging

// GET and PATCH /api/devices/<dev>/state: the device's twin (README: "The twin").
extension DeviceAPI {
    public func state(_ request: WebhookRequest, device text: String) async -> WebhookAnswer {
        let device: DeviceName
        do throws(Refusal) { device = try Self.device(text) } catch { return error.answer }
        guard let twins else { return Self.error(501, storeAbsence) }
        do {
            let document = try await withDeadline(Self.storeDeadline) { try await twins.document(device) }
            return Self.json(200, document.published)
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
            switch TwinSetRequest.parse(request.body, from: .http) {
            case .success(let parsed): patch = parsed.desired
            case .failure(let refusal): throw Refusal(refusal.code, refusal.description)
            }
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
                return Self.json(200, document.published)
            case .failure(.staleVersion(let current)):
                return Self.error(412, "\(TwinRefusal.staleVersion(current: current)): GET the state and try again with If-Match: \(current)")
            case .failure(let refusal):
                return Self.error(refusal.code, refusal.description)
            }
        } catch {
            return storeUnavailable(error)
        }
    }
}
