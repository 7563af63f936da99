// lambda.mjs: the Lambda front end of the emulator.
//
// Invoke (POST /2015-03-31/functions/{name}/invocations) is served here:
// the function must exist in moto (GetFunction, with the Qualifier), and
// its code is the local module <functions dir>/<FunctionName>.mjs, whose
// `handler(event, context)` runs in a child process (runner.mjs) with the
// function's Timeout and environment variables from moto.  Every other
// request is forwarded to moto untouched.  Every request must carry a
// valid SigV4 signature (service "lambda") made with the emulator's
// credentials.
import { fork } from 'node:child_process';
import http from 'node:http';
import path from 'node:path';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { GetFunctionCommand, LambdaClient } from '@aws-sdk/client-lambda';
import { headerMap, verifyAny } from './sigv4.mjs';
import { log, readBody, requestId, sendJson, splitUrl } from './util.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const RUNNER = path.join(HERE, 'runner.mjs');
const LOG_TAIL = 4096;

const INVOKE_RE = /^\/2015-03-31\/functions\/([^/]+)\/invocations\/?$/;

export class LambdaEmu {
	// opts: { motoEndpoint, region, creds, mgmtCredentials, functionsDirs }
	constructor(opts) {
		this.opts = opts;
		this.moto = new URL(opts.motoEndpoint);
		this.clients = new Map();
		this.children = new Set();
	}

	client(region) {
		let c = this.clients.get(region);
		if (!c) {
			c = new LambdaClient({
				endpoint: this.opts.motoEndpoint, region,
				credentials: this.opts.mgmtCredentials, maxAttempts: 1,
			});
			this.clients.set(region, c);
		}
		return c;
	}

	stop() {
		for (const c of this.children) {
			c.kill('SIGKILL');
		}
	}

	handlerFile(name) {
		for (const d of this.opts.functionsDirs) {
			const f = path.join(d, `${name}.mjs`);
			if (existsSync(f)) {
				return f;
			}
		}
		return path.join(this.opts.functionsDirs[0], `${name}.mjs`);
	}

	// The function's configuration from moto, or null when moto has none.
	async getFunction(region, name, qualifier) {
		try {
			const out = await this.client(region).send(new GetFunctionCommand({
				FunctionName: name, Qualifier: qualifier || undefined,
			}));
			return out.Configuration;
		} catch (e) {
			if (e.name === 'ResourceNotFoundException' || e.$metadata?.httpStatusCode === 404) {
				return null;
			}
			throw e;
		}
	}

	// Run the handler of `cfg` (a moto FunctionConfiguration) with `event`.
	// Resolves { ok, result (JSON text) | error (object), log (text) }.
	run(cfg, event) {
		const reqId = requestId();
		const timeoutSec = cfg.Timeout || 3;
		const memory = cfg.MemorySize || 128;
		const started = process.hrtime.bigint();
		const env = { ...process.env };
		for (const k of Object.keys(env)) {
			if (k.startsWith('EMU_') || k.startsWith('AWS_')) {
				delete env[k];
			}
		}
		Object.assign(env, cfg.Environment?.Variables || {}, {
			AWS_LAMBDA_FUNCTION_NAME: cfg.FunctionName,
			AWS_LAMBDA_FUNCTION_VERSION: '$LATEST',
			AWS_LAMBDA_FUNCTION_MEMORY_SIZE: String(memory),
			AWS_REGION: this.opts.region,
			AWS_DEFAULT_REGION: this.opts.region,
		});
		const child = fork(RUNNER, [], { stdio: ['ignore', 'pipe', 'pipe', 'ipc'], execArgv: [], env });
		this.children.add(child);
		const out = [];
		child.stdout.on('data', (c) => out.push(c));
		child.stderr.on('data', (c) => out.push(c));
		let reply = null;
		child.on('message', (m) => {
			reply = m;
		});
		let timedOut = false;
		const timer = setTimeout(() => {
			timedOut = true;
			child.kill('SIGKILL');
		}, timeoutSec * 1000);
		child.send({
			file: this.handlerFile(cfg.FunctionName),
			event,
			context: {
				functionName: cfg.FunctionName,
				invokedFunctionArn: cfg.FunctionArn,
				memoryLimitInMB: memory,
				awsRequestId: reqId,
				logStreamName: `${new Date().toISOString().slice(0, 10).replace(/-/g, '/')}/[$LATEST]${reqId.replace(/-/g, '')}`,
				deadline: Date.now() + timeoutSec * 1000,
			},
		});
		return new Promise((resolve) => {
			child.on('close', (code, signal) => {
				clearTimeout(timer);
				this.children.delete(child);
				const ms = Number(process.hrtime.bigint() - started) / 1e6;
				let r;
				if (timedOut) {
					r = {
						ok: false,
						error: {
							errorType: 'Sandbox.Timedout',
							errorMessage: `RequestId: ${reqId} Error: Task timed out after ${timeoutSec.toFixed(2)} seconds`,
						},
					};
				} else if (reply) {
					r = reply;
				} else {
					r = {
						ok: false,
						error: {
							errorType: 'Runtime.ExitError',
							errorMessage: `RequestId: ${reqId} Error: Runtime exited with error: ${signal ? `signal: ${signal}` : `exit status ${code}`}`,
						},
					};
				}
				const body = Buffer.concat(out).toString('utf8');
				r.log = `START RequestId: ${reqId} Version: $LATEST\n${body}` +
					(timedOut ? `${new Date().toISOString()} ${reqId} Task timed out after ${timeoutSec.toFixed(2)} seconds\n` : '') +
					`END RequestId: ${reqId}\n` +
					`REPORT RequestId: ${reqId}\tDuration: ${ms.toFixed(2)} ms\tBilled Duration: ${Math.ceil(ms)} ms\t` +
					`Memory Size: ${memory} MB\tMax Memory Used: ${Math.min(memory, 40 + Math.floor(Math.random() * 10))} MB\t\n`;
				r.requestId = reqId;
				resolve(r);
			});
		});
	}

	// Invoke for other front ends (API Gateway's AWS_PROXY): by name or
	// ARN.  Resolves null when moto has no such function.
	async invoke(region, nameOrArn, event) {
		const cfg = await this.getFunction(region, nameOrArn);
		if (!cfg) {
			return null;
		}
		return this.run(cfg, event);
	}

	// The HTTP handler of the Lambda endpoint.
	async handle(req, res) {
		const body = await readBody(req, 6 * 1024 * 1024 + 1024);
		if (body === null) {
			sendJson(res, 413, { Type: 'User', message: 'Request must be smaller than 6291456 bytes for the InvokeFunction operation' },
				{ 'x-amzn-ErrorType': 'RequestTooLargeException' });
			return;
		}
		const { path: p, rawQuery } = splitUrl(req.url);
		const region = this.opts.region;
		const v = await verifyAny({
			method: req.method, path: p, rawQuery, headers: headerMap(req.rawHeaders), body,
		}, { service: 'lambda', region, creds: this.opts.creds });
		if (!v.ok) {
			sendJson(res, v.status, { message: v.message }, { 'x-amzn-ErrorType': v.type, 'x-amzn-RequestId': requestId() });
			return;
		}
		const m = req.method === 'POST' ? INVOKE_RE.exec(p) : null;
		if (!m) {
			this.forward(req, res, body);
			return;
		}
		await this.handleInvoke(req, res, decodeURIComponent(m[1]), new URLSearchParams(rawQuery).get('Qualifier'), body);
	}

	async handleInvoke(req, res, name, qualifier, body) {
		const region = this.opts.region;
		const reqIdHeader = { 'x-amzn-RequestId': requestId() };
		const cfg = await this.getFunction(region, name, qualifier);
		if (!cfg) {
			const arn = name.startsWith('arn:') ? name
				: `arn:aws:lambda:${region}:123456789012:function:${name}${qualifier ? `:${qualifier}` : ''}`;
			sendJson(res, 404, { Type: 'User', message: `Function not found: ${arn}` },
				{ 'x-amzn-ErrorType': 'ResourceNotFoundException', ...reqIdHeader });
			return;
		}
		let event = {};
		if (body.length) {
			try {
				event = JSON.parse(body.toString('utf8'));
			} catch (e) {
				sendJson(res, 400, { Type: 'User', message: `Could not parse request body into json: ${e.message}` },
					{ 'x-amzn-ErrorType': 'InvalidRequestContentException', ...reqIdHeader });
				return;
			}
		}
		const type = req.headers['x-amz-invocation-type'] || 'RequestResponse';
		if (type === 'DryRun') {
			res.writeHead(204, reqIdHeader);
			res.end();
			return;
		}
		if (type === 'Event') {
			res.writeHead(202, { ...reqIdHeader, 'Content-Length': 0 });
			res.end();
			this.run(cfg, event).then((r) => log(`async invoke ${cfg.FunctionName}: ${r.ok ? 'ok' : 'error'}`));
			return;
		}
		if (type !== 'RequestResponse') {
			sendJson(res, 400, { Type: 'User', message: `1 validation error detected: Value '${type}' at 'invocationType' failed to satisfy constraint: Member must satisfy enum value set: [Event, RequestResponse, DryRun]` },
				{ 'x-amzn-ErrorType': 'ValidationException', ...reqIdHeader });
			return;
		}
		const r = await this.run(cfg, event);
		const headers = {
			'x-amzn-RequestId': r.requestId,
			'X-Amz-Executed-Version': '$LATEST',
		};
		if (/^tail$/i.test(req.headers['x-amz-log-type'] || '')) {
			const buf = Buffer.from(r.log, 'utf8');
			headers['X-Amz-Log-Result'] = buf.subarray(Math.max(0, buf.length - LOG_TAIL)).toString('base64');
		}
		if (r.ok) {
			sendJson(res, 200, r.result, headers);
		} else {
			headers['X-Amz-Function-Error'] = 'Unhandled';
			sendJson(res, 200, r.error, headers);
		}
	}

	// Anything but Invoke: to moto as it came.
	forward(req, res, body) {
		const up = http.request({
			host: this.moto.hostname,
			port: this.moto.port,
			method: req.method,
			path: req.url,
			headers: req.headers,
		}, (ur) => {
			res.writeHead(ur.statusCode, ur.headers);
			ur.pipe(res);
		});
		up.on('error', (e) => sendJson(res, 502, { message: `moto: ${e.message}` }, { 'x-amzn-ErrorType': 'ServiceException' }));
		up.end(body);
	}
}
