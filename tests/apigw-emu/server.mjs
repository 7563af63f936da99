#!/usr/bin/env node
// server.mjs: the execute-api and Lambda emulator of the dynfs tests
// (docs/testing-apis.md).
//
//   node server.mjs --moto URL --cert FILE --key FILE --port-file FILE
//                   [--region REGION] [--functions DIR]... [--no-backend]
//
// Listens on 127.0.0.1 only, every port chosen by the kernel:
//   https    execute-api over TLS with the given certificate: REST and
//            HTTP APIs, WebSocket APIs (wss), and the Lambda API when the
//            Host is lambda.{region}.amazonaws.com
//   http     the same without TLS (for debugging)
//   lambda   the Lambda API over plain HTTP (Invoke emulated, the rest
//            forwarded to moto)
//   backend  the HTTP back end of the test APIs (backend.mjs)
// and, once all listen, writes FILE (atomically) with the lines
// "https=PORT", "http=PORT", "lambda=PORT", "backend=PORT".
//
// Environment: EMU_ACCESS_KEY_ID, EMU_SECRET_ACCESS_KEY (required) and
// EMU_SESSION_TOKEN (optional): the only credentials signed requests may
// use.  EMU_DEF_TTL_MS: how long API definitions are cached (1000).
// EMU_MAX_SKEW_SECONDS: the accepted clock skew of signatures (900).
// One line per request goes to stderr.
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { startBackend } from './backend.mjs';
import { Definitions } from './defs.mjs';
import { ExecuteApi, forwardHttp } from './execute.mjs';
import { LambdaEmu } from './lambda.mjs';
import { credentialsFromEnv } from './sigv4.mjs';
import { log, parseExecuteApiHost, sendJson } from './util.mjs';
import { WebSocketFront } from './websocket.mjs';

// The SDK's clients check this when they are made, below.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true';
const HERE = path.dirname(fileURLToPath(import.meta.url));

function die(msg) {
	process.stderr.write(`apigw-emu: ${msg}\n`);
	process.exit(2);
}

const args = { functions: [] };
for (let i = 2; i < process.argv.length; i++) {
	const a = process.argv[i];
	const val = () => {
		if (i + 1 >= process.argv.length) {
			die(`${a} needs a value`);
		}
		return process.argv[++i];
	};
	switch (a) {
	case '--moto': args.moto = val(); break;
	case '--cert': args.cert = val(); break;
	case '--key': args.key = val(); break;
	case '--port-file': args.portFile = val(); break;
	case '--region': args.region = val(); break;
	case '--functions': args.functions.push(path.resolve(val())); break;
	case '--no-backend': args.noBackend = true; break;
	default: die(`unknown argument ${a} (see the comment at the top of server.mjs)`);
	}
}
args.moto = args.moto || process.env.EMU_MOTO_ENDPOINT;
if (!args.moto || !args.cert || !args.key || !args.portFile) {
	die('usage: server.mjs --moto URL --cert FILE --key FILE --port-file FILE [--region R] [--functions DIR]... [--no-backend]');
}
const creds = credentialsFromEnv();
if (!creds) {
	die('EMU_ACCESS_KEY_ID and EMU_SECRET_ACCESS_KEY must be set');
}
const region = args.region || process.env.AWS_REGION || 'us-east-1';
if (!args.functions.length) {
	args.functions.push(path.join(HERE, 'functions'));
}

// moto is run without authentication: any key will do for its management
// APIs, and all keys share its default account.
const mgmtCredentials = { accessKeyId: 'AKIAAPIGWEMULATOR000', secretAccessKey: 'not-checked-by-moto' };
const defs = new Definitions({ endpoint: args.moto, credentials: mgmtCredentials });
const lambda = new LambdaEmu({
	motoEndpoint: args.moto, region, creds, mgmtCredentials, functionsDirs: args.functions,
});
const execute = new ExecuteApi({ defs, lambda, creds });
const wsFront = new WebSocketFront({ defs, lambda, creds, forwardHttp });

function logged(name, handler) {
	return (req, res) => {
		const t0 = Date.now();
		res.on('finish', () => log(`${name} ${req.method} ${req.headers.host || '-'} ${req.url} -> ${res.statusCode} (${Date.now() - t0} ms)`));
		res.on('close', () => {
			if (!res.writableFinished) {
				log(`${name} ${req.method} ${req.headers.host || '-'} ${req.url} -> aborted (${Date.now() - t0} ms)`);
			}
		});
		Promise.resolve()
			.then(() => handler(req, res))
			.catch((e) => {
				log(`error: ${e.stack || e}`);
				sendJson(res, 500, { message: 'Internal server error' }, { 'x-amzn-ErrorType': 'InternalServerErrorException' });
			});
	};
}

function frontDoor(req, res) {
	const host = req.headers.host || '';
	const target = parseExecuteApiHost(host);
	if (target) {
		return execute.handle(req, res, target);
	}
	if (/^lambda\.[a-z0-9-]+\.amazonaws\.com(:\d+)?$/i.test(host)) {
		return lambda.handle(req, res);
	}
	sendJson(res, 404, { message: `apigw-emu: unknown host '${host}': use {api-id}.execute-api.{region}.amazonaws.com or lambda.{region}.amazonaws.com` });
	return undefined;
}

function onUpgrade(req, socket, head) {
	socket.on('error', () => {});
	const target = parseExecuteApiHost(req.headers.host || '');
	if (!target) {
		socket.end('HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n');
		return;
	}
	wsFront.upgrade(req, socket, head, target).catch((e) => {
		log(`ws upgrade: ${e.stack || e}`);
		socket.end('HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\nConnection: close\r\n\r\n');
	});
}

function listen(server) {
	return new Promise((resolve, reject) => {
		server.once('error', reject);
		server.listen(0, '127.0.0.1', () => resolve(server.address().port));
	});
}

const tls = https.createServer({ cert: readFileSync(args.cert), key: readFileSync(args.key) }, logged('https', frontDoor));
tls.on('upgrade', onUpgrade);
const plain = http.createServer(logged('http', frontDoor));
plain.on('upgrade', onUpgrade);
const lambdaServer = http.createServer(logged('lambda', (req, res) => lambda.handle(req, res)));
const servers = [tls, plain, lambdaServer];

const ports = {
	https: await listen(tls),
	http: await listen(plain),
	lambda: await listen(lambdaServer),
};
if (!args.noBackend) {
	const b = await startBackend();
	servers.push(b);
	ports.backend = b.address().port;
}
const text = Object.entries(ports).map(([k, v]) => `${k}=${v}\n`).join('');
writeFileSync(`${args.portFile}.tmp`, text);
renameSync(`${args.portFile}.tmp`, args.portFile);
log(`listening on 127.0.0.1: ${text.trim().replace(/\n/g, ', ')}; moto at ${args.moto}`);

function shutdown() {
	log('stopping');
	lambda.stop();
	wsFront.close();
	for (const s of servers) {
		s.close();
		s.closeAllConnections?.();
	}
	setTimeout(() => process.exit(0), 200).unref();
}
process.on('SIGTERM', shutdown);
process.on('SIGINT', shutdown);
