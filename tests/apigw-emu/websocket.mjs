// websocket.mjs: WebSocket APIs (wss://{api-id}.execute-api.{region}.
// amazonaws.com/{stage}).
//
// The upgrade is answered only for a WEBSOCKET API of moto with that
// stage.  When the $connect route's authorizationType is AWS_IAM, the
// request must be signed (a presigned query string, or an Authorization
// header); otherwise the answer is an HTTP 403 before any upgrade.
//
// Each message is routed by the API's route selection expression
// ($request.body.<field>, default $request.body.action): the route whose
// key is that field's value, else $default, else an error message
// {"message": "Forbidden", ...} as API Gateway sends.  What a route does
// depends on its integration:
//   MOCK (or none)   echo, see echo() below
//   HTTP, HTTP_PROXY POST the message to the URI; a non-empty answer body
//                    is sent back as one message
//   AWS_PROXY        invoke the Lambda function; a "body" in its result is
//                    sent back as one message
import { WebSocketServer } from 'ws';
import { splitPath } from './defs.mjs';
import { selectWsRoute } from './router.mjs';
import { headerMap, verifyAny } from './sigv4.mjs';
import { connectionId, lambdaNameFromUri, log, requestId, splitUrl } from './util.mjs';

// connectionId -> { ws, apiId, stage, connectedAt, lastActiveAt, sourceIp, userAgent }
export const connections = new Map();

// API Gateway's limits: a message is at most 128 KB.
const MAX_MESSAGE = 128 * 1024;
const MAX_TIMES = 1000;

function reject(socket, status, reason, body, headers = {}) {
	const text = JSON.stringify(body);
	const lines = [
		`HTTP/1.1 ${status} ${reason}`,
		'Content-Type: application/json',
		`Content-Length: ${Buffer.byteLength(text)}`,
		`x-amzn-RequestId: ${requestId()}`,
		...Object.entries(headers).map(([k, v]) => `${k}: ${v}`),
		'Connection: close',
		'',
		text,
	];
	socket.end(lines.join('\r\n'));
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// The echo of MOCK routes.  A message that is a JSON object with a
// "times" member (an integer 0..1000) is answered by that many messages,
// each the object with "seq": 1, 2, ... added; any other message is sent
// back once, unchanged (text stays text, binary stays binary).  A
// "delayMs" member (0..10000) waits that long before each answer, and
// "close": true closes the connection (code 1000) after the answers.
async function echo(ws, data, isBinary, text) {
	let obj = null;
	if (text !== null) {
		try {
			const v = JSON.parse(text);
			if (v !== null && typeof v === 'object' && !Array.isArray(v)) {
				obj = v;
			}
		} catch {
			// not JSON
		}
	}
	const delay = obj && Number.isFinite(obj.delayMs) ? Math.min(Math.max(obj.delayMs, 0), 10000) : 0;
	if (obj && obj.times !== undefined) {
		const n = Math.min(Math.max(Math.trunc(Number(obj.times)) || 0, 0), MAX_TIMES);
		for (let i = 1; i <= n; i++) {
			if (delay) {
				await sleep(delay);
			}
			if (ws.readyState !== ws.OPEN) {
				return;
			}
			ws.send(JSON.stringify({ ...obj, seq: i }));
		}
	} else {
		if (delay) {
			await sleep(delay);
		}
		if (ws.readyState === ws.OPEN) {
			ws.send(data, { binary: isBinary });
		}
	}
	if (obj && obj.close === true && ws.readyState === ws.OPEN) {
		ws.close(1000, 'closed on request');
	}
}

export class WebSocketFront {
	// opts: { defs, lambda, creds, forwardHttp }
	constructor(opts) {
		this.opts = opts;
		this.wss = new WebSocketServer({ noServer: true, maxPayload: MAX_MESSAGE });
	}

	close() {
		for (const c of connections.values()) {
			c.ws.terminate();
		}
		this.wss.close();
	}

	async upgrade(req, socket, head, target) {
		const { apiId, region } = target;
		const { path, rawQuery } = splitUrl(req.url);
		const segs = splitPath(path);
		const { def } = await this.opts.defs.lookup(region, apiId,
			(d) => (d.kind === 'WEBSOCKET' && segs.length === 1 && d.stages.has(segs[0]) ? d : null));
		if (!def || def.kind !== 'WEBSOCKET' || segs.length !== 1 || !def.stages.has(segs[0])) {
			log(`ws ${req.headers.host} ${path} -> 403 (no such WebSocket API or stage)`);
			reject(socket, 403, 'Forbidden', { message: 'Forbidden' }, { 'x-amzn-ErrorType': 'ForbiddenException' });
			return;
		}
		const stage = segs[0];
		const connect = def.routes.find((r) => r.key === '$connect');
		if (connect && connect.authorizationType === 'AWS_IAM') {
			const v = await verifyAny({
				method: 'GET', path, rawQuery, headers: headerMap(req.rawHeaders), body: Buffer.alloc(0),
			}, { service: 'execute-api', region, creds: this.opts.creds });
			if (!v.ok) {
				log(`ws ${req.headers.host} ${path} -> 403 (${v.type})`);
				reject(socket, 403, 'Forbidden', { message: v.message }, { 'x-amzn-ErrorType': v.type });
				return;
			}
		}
		const id = connectionId();
		const ctxBase = {
			apiId, stage, connectionId: id, domainName: req.headers.host,
			identity: { sourceIp: req.socket.remoteAddress, userAgent: req.headers['user-agent'] || '' },
		};
		if (connect?.integration?.type === 'AWS_PROXY') {
			const r = await this.lambdaEvent(region, connect, { ...ctxBase, eventType: 'CONNECT', routeKey: '$connect' }, null, req);
			const sc = r && r.ok ? Number(JSON.parse(r.result)?.statusCode ?? 200) : 500;
			if (!(sc >= 200 && sc < 300)) {
				log(`ws ${req.headers.host} ${path} -> ${sc} ($connect refused)`);
				reject(socket, sc === 500 ? 500 : 403, sc === 500 ? 'Internal Server Error' : 'Forbidden',
					{ message: sc === 500 ? 'Internal server error' : 'Forbidden' });
				return;
			}
		}
		this.wss.handleUpgrade(req, socket, head, (ws) => {
			log(`ws ${req.headers.host} ${path} -> 101 connection ${id}`);
			const now = new Date().toISOString();
			connections.set(id, {
				ws, apiId, stage, connectedAt: now, lastActiveAt: now,
				sourceIp: ctxBase.identity.sourceIp, userAgent: ctxBase.identity.userAgent,
			});
			ws.on('message', (data, isBinary) => {
				const c = connections.get(id);
				if (c) {
					c.lastActiveAt = new Date().toISOString();
				}
				this.onMessage(ws, def, region, ctxBase, data, isBinary).catch((e) => log(`ws message: ${e.stack || e}`));
			});
			ws.on('close', (code) => {
				connections.delete(id);
				log(`ws connection ${id} closed (${code})`);
				const disc = def.routes.find((r) => r.key === '$disconnect');
				if (disc?.integration?.type === 'AWS_PROXY') {
					this.lambdaEvent(region, disc, { ...ctxBase, eventType: 'DISCONNECT', routeKey: '$disconnect' }, null, req)
						.catch(() => {});
				}
			});
			ws.on('error', (e) => log(`ws connection ${id}: ${e.message}`));
		});
	}

	lambdaEvent(region, route, context, body, req) {
		const name = lambdaNameFromUri(route.integration.uri);
		const event = {
			requestContext: { ...context, requestId: requestId(), requestTimeEpoch: Date.now(), messageDirection: 'IN' },
			isBase64Encoded: false,
		};
		if (body !== null) {
			event.body = body;
		}
		if (req && context.eventType === 'CONNECT') {
			event.headers = headerMap(req.rawHeaders);
			event.queryStringParameters = Object.fromEntries(new URLSearchParams(splitUrl(req.url).rawQuery));
		}
		return name ? this.opts.lambda.invoke(region, name, event) : Promise.resolve(null);
	}

	async onMessage(ws, def, region, ctxBase, data, isBinary) {
		const text = isBinary ? null : data.toString('utf8');
		const route = selectWsRoute(def, text);
		const rid = requestId();
		if (!route) {
			ws.send(JSON.stringify({ message: 'Forbidden', connectionId: ctxBase.connectionId, requestId: rid }));
			return;
		}
		const type = route.integration?.type || 'MOCK';
		if (type === 'MOCK') {
			await echo(ws, data, isBinary, text);
			return;
		}
		if (type === 'HTTP' || type === 'HTTP_PROXY') {
			const fw = await this.opts.forwardHttp({
				url: route.integration.uri, method: 'POST', rawHeaders: ['content-type', 'application/json'],
				body: Buffer.from(data), timeoutMs: route.integration.timeoutInMillis || 29000,
			});
			if (fw.error) {
				ws.send(JSON.stringify({ message: 'Internal server error', connectionId: ctxBase.connectionId, requestId: rid }));
				return;
			}
			const chunks = [];
			for await (const c of fw.res) {
				chunks.push(c);
			}
			const out = Buffer.concat(chunks);
			if (out.length && ws.readyState === ws.OPEN) {
				ws.send(out.toString('utf8'));
			}
			return;
		}
		if (type === 'AWS_PROXY') {
			const r = await this.lambdaEvent(region, route,
				{ ...ctxBase, eventType: 'MESSAGE', routeKey: route.key, messageId: rid }, text ?? Buffer.from(data).toString('base64'), null);
			if (!r || !r.ok) {
				ws.send(JSON.stringify({ message: 'Internal server error', connectionId: ctxBase.connectionId, requestId: rid }));
				return;
			}
			let out = null;
			try {
				out = JSON.parse(r.result);
			} catch {
				// nothing to send
			}
			if (out && typeof out === 'object' && out.body !== undefined && out.body !== null && ws.readyState === ws.OPEN) {
				ws.send(typeof out.body === 'string' ? out.body : JSON.stringify(out.body));
			}
			return;
		}
		ws.send(JSON.stringify({ message: 'Internal server error', connectionId: ctxBase.connectionId, requestId: rid }));
	}
}
