// util.mjs: small helpers shared by the emulator's modules.
import { randomBytes, randomUUID } from 'node:crypto';

// Bodies larger than this are refused (API Gateway: 10 MB).
export const MAX_BODY = 10 * 1024 * 1024;

export function log(line) {
	process.stderr.write(`apigw-emu: ${line}\n`);
}

// The whole request body as a Buffer; null when it exceeds `limit`.
export function readBody(req, limit = MAX_BODY) {
	return new Promise((resolve, reject) => {
		const chunks = [];
		let n = 0;
		let over = false;
		req.on('data', (c) => {
			n += c.length;
			if (n > limit) {
				over = true;
				chunks.length = 0;
			} else if (!over) {
				chunks.push(c);
			}
		});
		req.on('end', () => resolve(over ? null : Buffer.concat(chunks)));
		req.on('error', reject);
	});
}

export function sendJson(res, status, obj, headers = {}) {
	if (res.headersSent) {
		res.destroy();
		return;
	}
	const body = Buffer.from(typeof obj === 'string' ? obj : JSON.stringify(obj));
	res.writeHead(status, {
		'Content-Type': 'application/json',
		'Content-Length': body.length,
		...headers,
	});
	res.end(body);
}

export function requestId() {
	return randomUUID();
}

// API Gateway's other request id (x-amz-apigw-id), e.g. "Ab1CdEfGhIjKlM=".
export function apigwId() {
	return `${randomBytes(10).toString('base64').replace(/[+/]/g, 'x').slice(0, 13)}=`;
}

// A WebSocket connection id in API Gateway's form ("L0SM9cOFvHcCIhw=").
export function connectionId() {
	return `${randomBytes(11).toString('base64').replace(/[+/]/g, 'x').slice(0, 15)}=`;
}

// "{id}.execute-api.{region}.amazonaws.com[:port]" -> { apiId, region }.
export function parseExecuteApiHost(host) {
	const m = /^([a-z0-9]+)\.execute-api\.([a-z0-9-]+)\.amazonaws\.com(?::\d+)?$/i.exec(host || '');
	return m ? { apiId: m[1].toLowerCase(), region: m[2].toLowerCase() } : null;
}

// Text when `buf` is valid UTF-8, else null.
export function utf8OrNull(buf) {
	const s = buf.toString('utf8');
	return Buffer.from(s, 'utf8').equals(buf) ? s : null;
}

export const HOP_BY_HOP = new Set([
	'connection', 'keep-alive', 'proxy-authenticate', 'proxy-authorization', 'te',
	'trailer', 'transfer-encoding', 'upgrade', 'proxy-connection',
]);

// Parse a raw URL "/a/b?x=1" into { path, rawQuery }.
export function splitUrl(url) {
	const q = url.indexOf('?');
	return q < 0 ? { path: url, rawQuery: '' } : { path: url.slice(0, q), rawQuery: url.slice(q + 1) };
}

// The function name in a Lambda integration URI (either
// arn:aws:apigateway:REGION:lambda:path/2015-03-31/functions/arn:aws:lambda:
// REGION:ACCOUNT:function:NAME/invocations or the function's ARN).
export function lambdaNameFromUri(uri) {
	const m = /function:([^:/]+)/.exec(uri || '');
	return m ? m[1] : null;
}
