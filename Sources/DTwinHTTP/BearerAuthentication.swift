import DTwinContract
import HTTPTypes
import Hummingbird

/// `/api` needs `Authorization: Bearer $DTWIN_API_TOKEN`, or the dashboard's session cookie
/// (opened with the same token at `POST /login`): checked once for the whole route group,
/// before any handler or body read. A change asked with the cookie must also carry
/// ``Dashboard/requestHeader``, which no other site's page can set: the cookie is
/// `SameSite=Strict` besides, so a cross-site request arrives without it. A refusal is the JSON
/// answer ``APIAccess`` gives.
struct BearerAuthentication<Context: RequestContext>: RouterMiddleware {
    let access: APIAccess
    let sessions: DashboardSessions

    static var requestHeader: HTTPField.Name { HTTPField.Name(Dashboard.requestHeader)! }

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        if request.headers[.authorization] == nil, access.isEnabled,
            let id = DashboardSessions.id(inCookieHeader: request.headers[.cookie])
        {
            guard sessions.isValid(id, atMillis: Timestamp.nowMillis()) else {
                return HTTPServer.response(DeviceAPI.error(401, "the dashboard session has ended: log in again"))
            }
            if request.method != .get && request.method != .head && request.headers[Self.requestHeader] != "1" {
                return HTTPServer.response(
                    DeviceAPI.error(403, "a change with the dashboard's session must carry the header \(Dashboard.requestHeader): 1"))
            }
            return try await next(request, context)
        }
        if let refusal = access.refusal(authorization: request.headers[.authorization]) {
            return HTTPServer.response(refusal)
        }
        return try await next(request, context)
    }
}
