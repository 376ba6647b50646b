import Hummingbird

/// `/api` needs `Authorization: Bearer $DTWIN_API_TOKEN`: checked once for the whole route group,
/// before any handler or body read. A refusal is the JSON answer ``APIAccess`` gives.
struct BearerAuthentication<Context: RequestContext>: RouterMiddleware {
    let access: APIAccess

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        if let refusal = access.refusal(authorization: request.headers[.authorization]) {
            return HTTPServer.response(refusal)
        }
        return try await next(request, context)
    }
}
