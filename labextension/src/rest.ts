/**
 * How the labextension talks to its own Jupyter server's /api/cs3collab
 * routes: one fetcher type (serverfetcher.ts in the app, a fake in unit
 * tests) and one reading of a refusal into the server's own words. No
 * JupyterLab imports here, so that unit tests run in node.
 */

/** `ServerConnection.makeRequest` in the app (serverfetcher.ts), a fake in tests. */
export type Fetcher = (path: string, init?: { method?: string; body?: string }) => Promise<Response>;

/** A refused request, with the server's message (Jupyter's JSON `message`, or the service's). */
export class RestError extends Error {
  constructor(
    readonly status: number,
    message: string
  ) {
    super(message);
  }
}

/** The response if it is a success, else a RestError in the server's words. */
export async function checked(response: Response): Promise<Response> {
  if (response.ok) {
    return response;
  }
  let message = `${response.status} ${response.statusText}`.trim();
  try {
    const body = await response.json();
    message = body.message || body.reason || body.error || message;
  } catch {
    // not JSON
  }
  throw new RestError(response.status, message);
}
