// execute.mjs: the execute-api front end for REST and HTTP APIs (the
// requests to https://{api-id}.execute-api.{region}.amazonaws.com/...).
// See docs/testing-apis.md for what it reproduces.
import http from 'node:http';
import https from 'node:https';
import { randomBytes } from 'node:crypto';
import { splitPath } from './defs.mjs';
import { decodeParams, matchHttp, matchRest, selectStage } from './router.mjs';
import { headerMap, parseQuery, verifyAny } from './sigv4.mjs';
import {
	HOP_BY_HOP, apigwId, lambdaNameFromUri, log, readBody, requestId, sendJson, splitUrl, utf8OrNull,
} from './util.mjs';
import { connections } from './websocket.mjs';

const REST_MISSING = { message: 'Missing Authentication Token' };

// --- small VTL subset for MOCK and HTTP templates -----------------------
// $context.<dotted name>, $stageVariables.<name>, $input.params('name')
// (path, then query string, then header), $input.body, $input.json('$').
export function renderTemplate(tpl, t) {
	if (!tpl) {
		return '';
	}
	return tpl
		.replace(/\$input\.params\(\s*'([^']*)'\s*\)/g, (_, n) => {
			const v = t.pathParams?.[n] ?? t.query?.[n] ?? t.headers?.[n.toLowerCase()];
			return v === undefined ? '' : String(Array.isArray(v) ? v[v.length - 1] : v);
		})
		.replace(/\$input\.json\(\s*'\$'\s*\)/g, () => t.body || '{}')
		.replace(/\$input\.body/g, () => t.body || '')
		.replace(/\$stageVariables\.([A-Za-z0-9_]+)/g, (_, n) => t.stageVariables?.[n] ?? '')
		.replace(/\$context\.([A-Za-z0-9_.]*[A-Za-z0-9_])/g, (whole, n) => {
			let v = t.context;
			for (const k of n.split('.')) {
				v = v !== null && typeof v === 'object' ? v[k] : undefined;
			}
			return v === undefined ? '' : String(v);
		});
}

// The MOCK status: "statusCode": N in the request template.
function mockStatus(integration, contentType) {
	const tpls = integration.requestTemplates || {};
	const tpl = tpls[contentType] ?? tpls['application/json'] ?? Object.values(tpls)[0];
	const m = /"?statusCode"?\s*:\s*"?(\d{3})/.exec(tpl || '');
	return m ? m[1] : '200';
}

// The integration response for `selector` (a status code): the one whose
// selectionPattern matches it entirely, else the one without a pattern.
function selectIntegrationResponse(responses, selector) {
	let dflt = null;
	for (const ir of Object.values(responses || {})) {
		if (!ir.selectionPattern) {
			dflt = dflt || ir;
			continue;
		}
		try {
			if (new RegExp(`^(?:${ir.selectionPattern})$`, 's').test(selector)) {
				return ir;
			}
		} catch {
			// a bad pattern never matches
		}
	}
	return dflt;
}

// Static values of method.response.header.X: 'literal', or
// integration.response.header.Y from the backend's headers.
function responseHeaders(ir, backendHeaders = {}) {
	const out = {};
	for (const [k, v] of Object.entries(ir.responseParameters || {})) {
		const m = /^method\.response\.header\.(.+)$/.exec(k);
		if (!m) {
			continue;
		}
		const lit = /^'(.*)'$/s.exec(v);
		const from = /^integration\.response\.header\.(.+)$/.exec(v);
		if (lit) {
			out[m[1]] = lit[1];
		} else if (from && backendHeaders[from[1].toLowerCase()] !== undefined) {
			out[m[1]] = backendHeaders[from[1].toLowerCase()];
		}
	}
	return out;
}

// --- forwarding to an HTTP back end --------------------------------------
function substituteUri(uri, params, stageVariables) {
	return uri
		.replace(/\$\{stageVariables\.([A-Za-z0-9_]+)\}/g, (_, n) => stageVariables[n] ?? '')
		.replace(/\{([^{}]+?)\+?\}/g, (whole, n) => (params[n] !== undefined ? params[n] : whole));
}

// Resolves { status, headers, res } (res: the backend's response stream)
// or { error: 'timeout' | message }.
export function forwardHttp({ url, method, rawHeaders, body, timeoutMs, extraHeaders = {} }) {
	return new Promise((resolve) => {
		let target;
		try {
			target = new URL(url);
		} catch {
			resolve({ error: `bad integration URI ${url}` });
			return;
		}
		const headers = {};
		for (let i = 0; i + 1 < rawHeaders.length; i += 2) {
			const n = rawHeaders[i].toLowerCase();
			if (HOP_BY_HOP.has(n) || n === 'host' || n === 'content-length' || n === 'expect') {
				continue;
			}
			headers[n] = n in headers ? `${headers[n]}, ${rawHeaders[i + 1]}` : rawHeaders[i + 1];
		}
		Object.assign(headers, extraHeaders);
		headers.host = target.host;
		if (body && body.length) {
			headers['content-length'] = String(body.length);
		}
		const mod = target.protocol === 'https:' ? https : http;
		let done = false;
		const up = mod.request({
			protocol: target.protocol,
			hostname: target.hostname,
			port: target.port,
			method,
			path: `${target.pathname}${target.search}`,
			headers,
			agent: false,
		}, (ur) => {
			if (done) {
				ur.destroy();
				return;
			}
			done = true;
			clearTimeout(timer);
			resolve({ status: ur.statusCode, headers: ur.headers, res: ur });
		});
		const timer = setTimeout(() => {
			if (!done) {
				done = true;
				up.destroy();
				resolve({ error: 'timeout' });
			}
		}, timeoutMs);
		up.on('error', (e) => {
			if (!done) {
				done = true;
				clearTimeout(timer);
				resolve({ error: e.message });
			}
		});
		up.end(body && body.length ? body : undefined);
	});
}

function readAll(stream) {
	return new Promise((resolve, reject) => {
		const chunks = [];
		stream.on('data', (c) => chunks.push(c));
		stream.on('end', () => resolve(Buffer.concat(chunks)));
		stream.on('error', reject);
	});
}

function pipeBackend(res, fw, extra) {
	const headers = {};
	for (const [k, v] of Object.entries(fw.headers)) {
		if (!HOP_BY_HOP.has(k)) {
			headers[k] = v;
		}
	}
	res.writeHead(fw.status, { ...headers, ...extra });
	fw.res.pipe(res);
	fw.res.on('error', () => res.destroy());
}

// --- Lambda proxy events ----------------------------------------------------
function multi(rawHeaders) {
	const single = {};
	const many = {};
	for (let i = 0; i + 1 < rawHeaders.length; i += 2) {
		const n = rawHeaders[i];
		single[n] = rawHeaders[i + 1];
		(many[n] = many[n] || []).push(rawHeaders[i + 1]);
	}
	return { single, many };
}

function bodyField(body) {
	if (!body || !body.length) {
		return { body: null, isBase64Encoded: false };
	}
	const s = utf8OrNull(body);
	return s === null ? { body: body.toString('base64'), isBase64Encoded: true } : { body: s, isBase64Encoded: false };
}

function queryMaps(rawQuery) {
	const q = parseQuery(rawQuery);
	if (!Object.keys(q).length) {
		return { single: null, many: null, joined: null };
	}
	const single = {};
	const many = {};
	const joined = {};
	for (const [k, v] of Object.entries(q)) {
		const arr = [].concat(v);
		single[k] = arr[arr.length - 1];
		many[k] = arr;
		joined[k] = arr.join(',');
	}
	return { single, many, joined };
}

function restEvent(t) {
	const h = multi(t.rawHeaders);
	const q = queryMaps(t.rawQuery);
	const params = decodeParams(t.params);
	return {
		resource: t.resourcePath,
		path: `/${t.segs.join('/')}`,
		httpMethod: t.method,
		headers: h.single,
		multiValueHeaders: h.many,
		queryStringParameters: q.single,
		multiValueQueryStringParameters: q.many,
		pathParameters: Object.keys(params).length ? params : null,
		stageVariables: Object.keys(t.stageVariables).length ? t.stageVariables : null,
		requestContext: t.context,
		...bodyField(t.body),
	};
}

function httpEventV2(t) {
	const headers = {};
	const cookies = [];
	for (let i = 0; i + 1 < t.rawHeaders.length; i += 2) {
		const n = t.rawHeaders[i].toLowerCase();
		if (n === 'cookie') {
			cookies.push(...t.rawHeaders[i + 1].split(/;\s*/));
			continue;
		}
		headers[n] = n in headers ? `${headers[n]},${t.rawHeaders[i + 1]}` : t.rawHeaders[i + 1];
	}
	const params = decodeParams(t.params);
	const q = queryMaps(t.rawQuery);
	const ev = {
		version: '2.0',
		routeKey: t.routeKey,
		rawPath: t.rawPath,
		rawQueryString: t.rawQuery,
		headers,
		requestContext: {
			accountId: '123456789012',
			apiId: t.context.apiId,
			domainName: t.context.domainName,
			domainPrefix: t.context.apiId,
			http: {
				method: t.method,
				path: t.rawPath,
				protocol: 'HTTP/1.1',
				sourceIp: t.context.identity.sourceIp,
				userAgent: headers['user-agent'] || '',
			},
			requestId: t.context.requestId,
			routeKey: t.routeKey,
			stage: t.context.stage,
			time: new Date().toUTCString(),
			timeEpoch: Date.now(),
		},
		...bodyField(t.body),
	};
	if (cookies.length) {
		ev.cookies = cookies;
	}
	if (q.joined) {
		ev.queryStringParameters = q.joined;
	}
	if (Object.keys(params).length) {
		ev.pathParameters = params;
	}
	if (Object.keys(t.stageVariables).length) {
		ev.stageVariables = t.stageVariables;
	}
	return ev;
}

// --- the front end ------------------------------------------------------------
export class ExecuteApi {
	// opts: { defs, lambda, creds }
	constructor(opts) {
		this.opts = opts;
	}

	async handle(req, res, target) {
		const { apiId, region } = target;
		const rid = requestId();
		const { path: rawPath, rawQuery } = splitUrl(req.url);
		const segs = splitPath(rawPath);
		const method = req.method.toUpperCase();
		const body = await readBody(req);
		const { def, found } = await this.opts.defs.lookup(region, apiId, (d) => {
			if (d.kind === 'WEBSOCKET') {
				const st = selectStage(d, segs);
				return st && st.segs.length && decodeURIComponent(st.segs[0]) === '@connections' ? { st } : null;
			}
			const st = selectStage(d, segs);
			if (!st) {
				return null;
			}
			const m = d.kind === 'REST' ? matchRest(d, method, st.segs) : matchHttp(d, method, st.segs);
			return m ? { st, m } : null;
		});
		const restHdr = { 'x-amzn-RequestId': rid, 'x-amz-apigw-id': apigwId() };
		const httpHdr = { 'apigw-requestid': apigwId() };
		if (!def) {
			sendJson(res, 403, { message: 'Forbidden' }, { ...restHdr, 'x-amzn-ErrorType': 'ForbiddenException' });
			return;
		}
		const hdr = def.kind === 'HTTP' ? httpHdr : restHdr;
		if (!found) {
			if (def.kind === 'HTTP') {
				sendJson(res, 404, { message: 'Not Found' }, hdr);
			} else if (def.kind === 'WEBSOCKET') {
				sendJson(res, 403, { message: 'Forbidden' }, { ...hdr, 'x-amzn-ErrorType': 'ForbiddenException' });
			} else {
				sendJson(res, 403, REST_MISSING, { ...hdr, 'x-amzn-ErrorType': 'MissingAuthenticationTokenException' });
			}
			return;
		}
		if (body === null) {
			sendJson(res, 413, { message: 'Request Too Long' }, { ...hdr, 'x-amzn-ErrorType': 'RequestEntityTooLargeException' });
			return;
		}
		const { st, m } = found;
		const authType = def.kind === 'WEBSOCKET' ? 'AWS_IAM'
			: def.kind === 'REST' ? m.method.authorizationType : m.route.authorizationType;
		let identity = { sourceIp: req.socket.remoteAddress || '127.0.0.1', userAgent: req.headers['user-agent'] || '' };
		if (authType === 'AWS_IAM') {
			const v = await verifyAny({
				method, path: rawPath, rawQuery, headers: headerMap(req.rawHeaders), body,
			}, { service: 'execute-api', region, creds: this.opts.creds });
			if (!v.ok) {
				sendJson(res, v.status, { message: v.message }, { ...hdr, 'x-amzn-ErrorType': v.type });
				return;
			}
			identity = { ...identity, accessKey: v.accessKeyId, caller: v.accessKeyId, user: v.accessKeyId };
		}
		if (def.kind === 'WEBSOCKET') {
			this.connectionsApi(req, res, st, method, body, hdr);
			return;
		}
		const stageVariables = def.stages.get(st.stage)?.variables || {};
		const context = {
			accountId: '123456789012',
			apiId,
			domainName: req.headers.host,
			httpMethod: method,
			identity,
			path: rawPath,
			protocol: 'HTTP/1.1',
			requestId: rid,
			requestTimeEpoch: Date.now(),
			resourceId: def.kind === 'REST' ? m.resource.id : undefined,
			resourcePath: def.kind === 'REST' ? m.resource.path : undefined,
			routeKey: def.kind === 'HTTP' ? m.route.key : undefined,
			stage: st.stage,
		};
		const t = {
			method, rawPath, rawQuery, segs: st.segs, body, rawHeaders: req.rawHeaders,
			headers: headerMap(req.rawHeaders), query: parseQuery(rawQuery),
			params: m.params, pathParams: decodeParams(m.params), stageVariables, context,
			resourcePath: context.resourcePath, routeKey: context.routeKey,
		};
		const integration = def.kind === 'REST' ? m.method.integration : m.route.integration;
		if (!integration) {
			log(`no integration for ${method} ${rawPath}`);
			this.internalError(res, def, hdr);
			return;
		}
		try {
			await this.integrate(req, res, def, integration, t, hdr, region);
		} catch (e) {
			log(`integration failed: ${e.stack || e}`);
			this.internalError(res, def, hdr);
		}
	}

	internalError(res, def, hdr, status) {
		if (def.kind === 'HTTP') {
			sendJson(res, status || 500, { message: 'Internal Server Error' }, hdr);
		} else {
			sendJson(res, status || 500, { message: 'Internal server error' }, { ...hdr, 'x-amzn-ErrorType': 'InternalServerErrorException' });
		}
	}

	async integrate(req, res, def, integration, t, hdr, region) {
		const type = integration.type;
		if (type === 'MOCK') {
			const status = mockStatus(integration, t.headers['content-type']);
			const ir = selectIntegrationResponse(integration.integrationResponses, status);
			if (!ir) {
				this.internalError(res, def, hdr);
				return;
			}
			const tpls = ir.responseTemplates || {};
			const tpl = tpls['application/json'] ?? Object.values(tpls)[0];
			const out = Buffer.from(renderTemplate(tpl, t));
			const extra = responseHeaders(ir);
			const ct = Object.keys(extra).find((k) => k.toLowerCase() === 'content-type');
			res.writeHead(Number(ir.statusCode), {
				...(ct ? {} : { 'Content-Type': 'application/json' }),
				'Content-Length': out.length,
				...hdr,
				...extra,
			});
			res.end(out);
			return;
		}
		if (type === 'HTTP_PROXY' || type === 'HTTP') {
			const mapped = { ...t.params };
			for (const [k, v] of Object.entries(integration.requestParameters || {})) {
				const a = /^integration\.request\.path\.(.+)$/.exec(k);
				const b = /^method\.request\.path\.(.+)$/.exec(v);
				if (a && b && t.params[b[1]] !== undefined) {
					mapped[a[1]] = t.params[b[1]];
				}
			}
			let url = substituteUri(integration.uri || '', mapped, t.stageVariables);
			if (t.rawQuery) {
				url += (url.includes('?') ? '&' : '?') + t.rawQuery;
			}
			const im = (integration.httpMethod || 'ANY').toUpperCase();
			const fw = await forwardHttp({
				url,
				method: im === 'ANY' ? t.method : im,
				rawHeaders: t.rawHeaders,
				body: t.body,
				timeoutMs: integration.timeoutInMillis,
				extraHeaders: {
					'x-forwarded-for': t.context.identity.sourceIp,
					'x-forwarded-proto': 'https',
					'x-forwarded-port': '443',
					'x-amzn-trace-id': `Root=1-${Math.floor(Date.now() / 1000).toString(16)}-${randomBytes(12).toString('hex')}`,
				},
			});
			if (fw.error === 'timeout') {
				if (def.kind === 'HTTP') {
					sendJson(res, 503, { message: 'Service Unavailable' }, hdr);
				} else {
					sendJson(res, 504, { message: 'Endpoint request timed out' }, { ...hdr, 'x-amzn-ErrorType': 'IntegrationTimeoutException' });
				}
				return;
			}
			if (fw.error) {
				log(`backend ${url}: ${fw.error}`);
				this.internalError(res, def, hdr);
				return;
			}
			const irs = integration.integrationResponses || {};
			if (type === 'HTTP' && def.kind === 'REST' && Object.keys(irs).length) {
				const data = await readAll(fw.res);
				const ir = selectIntegrationResponse(irs, String(fw.status));
				if (!ir) {
					this.internalError(res, def, hdr);
					return;
				}
				const tpls = ir.responseTemplates || {};
				const tpl = tpls['application/json'] ?? Object.values(tpls)[0];
				const out = tpl ? Buffer.from(renderTemplate(tpl, { ...t, body: data.toString('utf8') })) : data;
				res.writeHead(Number(ir.statusCode), {
					'Content-Type': fw.headers['content-type'] || 'application/json',
					'Content-Length': out.length,
					...hdr,
					...responseHeaders(ir, fw.headers),
				});
				res.end(out);
				return;
			}
			pipeBackend(res, fw, hdr);
			return;
		}
		if (type === 'AWS_PROXY') {
			await this.lambdaProxy(res, def, integration, t, hdr, region);
			return;
		}
		log(`integration type ${type} is not emulated`);
		this.internalError(res, def, hdr);
	}

	async lambdaProxy(res, def, integration, t, hdr, region) {
		const name = lambdaNameFromUri(integration.uri);
		const v2 = def.kind === 'HTTP' && integration.payloadFormatVersion === '2.0';
		const event = def.kind === 'REST' || !v2 ? restEvent(t) : httpEventV2(t);
		if (def.kind === 'HTTP' && !v2) {
			event.version = '1.0';
			event.resource = t.routeKey;
		}
		const r = name ? await this.opts.lambda.invoke(region, name, event) : null;
		if (!r) {
			log(`AWS_PROXY: no function for ${integration.uri}`);
			this.internalError(res, def, hdr);
			return;
		}
		if (!r.ok) {
			log(`AWS_PROXY: ${name} failed: ${JSON.stringify(r.error)}`);
			this.internalError(res, def, hdr, def.kind === 'REST' ? 502 : 500);
			return;
		}
		let out;
		try {
			out = JSON.parse(r.result);
		} catch {
			out = null;
		}
		if (v2 && (out === null || typeof out !== 'object' || out.statusCode === undefined)) {
			const text = typeof out === 'string' ? out : r.result;
			res.writeHead(200, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text), ...hdr });
			res.end(text);
			return;
		}
		if (out === null || typeof out !== 'object' || !Number.isInteger(Number(out.statusCode))) {
			log(`AWS_PROXY: malformed Lambda proxy response from ${name}`);
			this.internalError(res, def, hdr, 502);
			return;
		}
		const headers = { ...hdr };
		for (const [k, vals] of Object.entries(out.multiValueHeaders || {})) {
			headers[k] = [].concat(vals).map(String);
		}
		for (const [k, v] of Object.entries(out.headers || {})) {
			headers[k] = String(v);
		}
		if (v2 && Array.isArray(out.cookies) && out.cookies.length) {
			headers['set-cookie'] = out.cookies;
		}
		let payload = out.body === undefined || out.body === null ? Buffer.alloc(0)
			: Buffer.from(typeof out.body === 'string' ? out.body : JSON.stringify(out.body),
				out.isBase64Encoded ? 'base64' : 'utf8');
		if (!Object.keys(headers).some((k) => k.toLowerCase() === 'content-type')) {
			headers['Content-Type'] = 'application/json';
		}
		headers['Content-Length'] = payload.length;
		res.writeHead(Number(out.statusCode), headers);
		res.end(payload);
		payload = null;
	}

	// POST/GET/DELETE /{stage}/@connections/{id} on a WebSocket API.
	connectionsApi(req, res, st, method, body, hdr) {
		const id = decodeURIComponent(st.segs[1] || '');
		const c = connections.get(id);
		if (!c || st.segs.length !== 2) {
			sendJson(res, 410, { message: null }, { ...hdr, 'x-amzn-ErrorType': 'GoneException' });
			return;
		}
		if (method === 'POST') {
			c.ws.send(body, { binary: utf8OrNull(body) === null });
			res.writeHead(200, { ...hdr, 'Content-Length': 0 });
			res.end();
		} else if (method === 'GET') {
			sendJson(res, 200, {
				connectedAt: c.connectedAt, identity: { sourceIp: c.sourceIp, userAgent: c.userAgent },
				lastActiveAt: c.lastActiveAt,
			}, hdr);
		} else if (method === 'DELETE') {
			c.ws.close(1000, 'Going away');
			res.writeHead(204, hdr);
			res.end();
		} else {
			sendJson(res, 403, { message: 'Forbidden' }, { ...hdr, 'x-amzn-ErrorType': 'ForbiddenException' });
		}
	}
}
