/** The JSON body of every error answer: `{ "error": { "code", "message", "hint"?, "problems"? } }`. */
const errorEnvelope = z.object({
  error: z.object({
    code: z.string(),
    message: z.string(),
    hint: z.string().nullish(),
    problems: z
      .array(z.object({ path: z.string(), message: z.string() }))
      .optional()
      .catch(undefined),
  }),
});

/** One refused value of a request: where it is in the body (a JSON pointer) and why. */
export interface TownesApiProblem {
  path: string;
  message: string;
}

/** A non-2xx answer from the API. */
export class TownesApiError extends Error {
  /** The HTTP status. */
  readonly status: number;
  /** The stable error code (`error.code`), or `http_<status>` when the body is not the API's error JSON. */
  readonly code: string;
  /** What to do about it (`error.hint`), when the server says. */
  readonly hint: string | undefined;
  /** For `invalid`: each refused value and why (`error.problems`); empty otherwise. */
  readonly problems: ReadonlyArray<TownesApiProblem>;
  /** The `X-Request-ID` response header: quote it when reporting a problem. */
  readonly requestId: string | undefined;
  /** The response body: the parsed JSON, or the text when it is not JSON. */
  readonly body: unknown;

  constructor(init: {
    status: number;
    code: string;
    message: string;
    hint?: string | undefined;
    problems?: ReadonlyArray<TownesApiProblem> | undefined;
    requestId?: string | undefined;
    body?: unknown;
  }) {
    super(init.message);
    this.name = "TownesApiError";
    this.status = init.status;
    this.code = init.code;
    this.hint = init.hint;
    this.problems = init.problems ?? [];
    this.requestId = init.requestId;
    this.body = init.body;
  }

  /** Reads a failed response into an error. */
  static async fromResponse(response: Response): Promise<TownesApiError> {
    const requestId = response.headers.get("x-request-id") ?? undefined;
    const text = await response.text().catch(() => "");
    let body: unknown = text;
    try {
      body = JSON.parse(text);
    } catch {
      // Not JSON (a proxy's error page, say): keep the text.
    }
    const parsed = errorEnvelope.safeParse(body);
    if (parsed.success) {
      const { code, message, hint, problems } = parsed.data.error;
      return new TownesApiError({
        status: response.status,
        code,
        message,
        hint: hint ?? undefined,
        problems,
        requestId,
        body,
      });
    }
    return new TownesApiError({
      status: response.status,
      code: `http_${response.status}`,
      message: response.statusText || `HTTP ${response.status}`,
      requestId,
      body,
    });
  }
}

/** Options for a whole client. */
export interface ClientInit {
  /** The `fetch` to call (default: the global one). */
  fetch?: typeof fetch;
  /** Headers sent with every request. */
  headers?: Record<string, string>;
  /** Default `"include"`, so that the dashboard's session cookie is sent. */
  credentials?: RequestCredentials;
}

/** Options for one call. */
export interface RequestOptions {
  signal?: AbortSignal;
  /** Headers for this call, over the client's. */
  headers?: Record<string, string>;
}

type QueryValue =
  | string
  | number
  | boolean
  | null
  | undefined
  | ReadonlyArray<string | number | boolean>;
