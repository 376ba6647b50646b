import CoreMetrics
import HTTPTypes
import Hummingbird

/// Counts every request in `dtwin_http_requests_total{route, method, status}`. The route is
/// the matched pattern (`/api/devices/{device}/readings`), not the path, so a scan of random
/// paths cannot create unbounded series.
struct RequestCounter<Context: RequestContext>: RouterMiddleware {
    let factory: any MetricsFactory

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            let response = try await next(request, context)
            count(request, context, response.status)
            return response
        } catch {
            count(request, context, (error as? any HTTPResponseError)?.status ?? .internalServerError)
            throw error
        }
    }

    func count(_ request: Request, _ context: Context, _ status: HTTPResponse.Status) {
        let dimensions = [
            ("route", context.endpointPath ?? "unmatched"), ("method", request.method.rawValue), ("status", String(status.code)),
        ]
        Counter(label: "dtwin_http_requests_total", dimensions: dimensions, factory: factory).increment()
    }
}
