#!/usr/bin/env node
// ws-echo.mjs: the WebSocket peer of tests/integration/test_wsconn.c, a
// stand-in for an API Gateway WebSocket API.  Started by
// tests/integration/run-with-ws-echo.sh:
//
//   node ws-echo.mjs --cert FILE --key FILE --port-file FILE
//
// It listens on 127.0.0.1 twice, on free ports: https (wss://) with the
// given certificate and plain http (ws://), and writes "HTTPS_PORT
// HTTP_PORT\n" to the port file once both listen.
//
// Upgrade paths (the query is ignored except as said):
//   /iam...        the query must be a SigV4 presign (service execute-api)
//                  by one of the keys in the environment, checked with the
//                  AWS SDK's own signer; otherwise 403 before upgrading
//   /status/NNN    refused with HTTP NNN before upgrading
//   /hang          never answered (the client's handshake must time out)
//   anything else  accepted
//
// Text messages received on an open socket:
//   repeat N TEXT  N messages "TEXT-1" .. "TEXT-N"
//   later MS TEXT  TEXT, MS milliseconds later
//   big N          one message of N 'x'
//   flood N SIZE   N messages of SIZE bytes each ("<i>:" then 'y' padding)
//   whoami         {"host": Host header, "url": request URL} as JSON
//   close          a close frame (1000, "bye")
//   drop           the TCP connection dropped, no close frame
//   lastclose      the close code the last finished connection got from
//                  its client ("none" when it had no close frame)
//   anything else  echoed back unchanged
//
// Environment: DYNFS_TEST_WS_REGION (default us-east-1),
// DYNFS_TEST_WS_AK/SK (a key without token), DYNFS_TEST_WS_STS_AK/SK/TOKEN
// (a key that must come with its session token).  Nothing secret is logged.
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import { createServer as createHttps } from 'node:https';
import { createServer as createHttp } from 'node:http';
import { WebSocketServer } from 'ws';
import { SignatureV4 } from '@smithy/signature-v4';
import { Sha256 } from '@aws-crypto/sha256-js';

function arg(name) {
	const i = process.argv.indexOf(name);
	if (i < 0 || i + 1 >= process.argv.length) {
		console.error(`ws-echo: ${name} is required`);
		process.exit(2);
	}
	return process.argv[i + 1];
}

const certFile = arg('--cert');
const keyFile = arg('--key');
const portFile = arg('--port-file');
const region = process.env.DYNFS_TEST_WS_REGION || 'us-east-1';

// Access key -> what the signer must have used.
const keys = new Map();
if (process.env.DYNFS_TEST_WS_AK)
	keys.set(process.env.DYNFS_TEST_WS_AK, {
		accessKeyId: process.env.DYNFS_TEST_WS_AK,
		secretAccessKey: process.env.DYNFS_TEST_WS_SK,
	});
if (process.env.DYNFS_TEST_WS_STS_AK)
	keys.set(process.env.DYNFS_TEST_WS_STS_AK, {
		accessKeyId: process.env.DYNFS_TEST_WS_STS_AK,
		secretAccessKey: process.env.DYNFS_TEST_WS_STS_SK,
		sessionToken: process.env.DYNFS_TEST_WS_STS_TOKEN,
	});

const PRESIGN_PARAMS = ['X-Amz-Algorithm', 'X-Amz-Credential', 'X-Amz-Date',
	'X-Amz-Expires', 'X-Amz-SignedHeaders', 'X-Amz-Security-Token',
	'X-Amz-Signature'];

function parseAmzDate(s) {
	const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(s || '');
	if (!m)
		return null;
	return new Date(Date.UTC(+m[1], +m[2] - 1, +m[3], +m[4], +m[5], +m[6]));
}

// null when the presign is good, else the reason (for the log).
async function checkPresign(req, url) {
	const q = {};
	for (const [k, v] of url.searchParams) {
		if (k in q)
			return `repeated parameter ${k}`;
		q[k] = v;
	}
	if (q['X-Amz-Algorithm'] !== 'AWS4-HMAC-SHA256')
		return 'no or wrong X-Amz-Algorithm';
	const sig = q['X-Amz-Signature'];
	if (!/^[0-9a-f]{64}$/.test(sig || ''))
		return 'no X-Amz-Signature';
	const [ak, day, credRegion, service, term] =
		(q['X-Amz-Credential'] || '').split('/');
	const creds = keys.get(ak);
	if (!creds)
		return 'unknown access key';
	if (credRegion !== region || service !== 'execute-api' ||
	    term !== 'aws4_request')
		return 'wrong credential scope';
	const date = parseAmzDate(q['X-Amz-Date']);
	if (!date || !q['X-Amz-Date'].startsWith(day))
		return 'bad X-Amz-Date';
	const expires = Number(q['X-Amz-Expires']);
	if (!Number.isInteger(expires) || expires < 1 || expires > 604800)
		return 'bad X-Amz-Expires';
	const now = Date.now();
	if (now > date.getTime() + expires * 1000 ||
	    date.getTime() > now + 5 * 60 * 1000)
		return 'outside the validity window';
	if (q['X-Amz-SignedHeaders'] !== 'host')
		return 'signed headers are not just host';
	if ((q['X-Amz-Security-Token'] || undefined) !== creds.sessionToken)
		return 'missing or wrong session token';

	const query = {};
	for (const k of Object.keys(q))
		if (!PRESIGN_PARAMS.includes(k))
			query[k] = q[k];
	const signer = new SignatureV4({
		credentials: creds, region, service: 'execute-api', sha256: Sha256,
	});
	const signed = await signer.presign({
		method: 'GET', protocol: 'https:', path: url.pathname, query,
		headers: { host: req.headers.host },
	}, { signingDate: date, expiresIn: expires });
	if (signed.query['X-Amz-Signature'] !== sig)
		return 'signature does not match';
	return null;
}

function refuse(socket, status, reason) {
	const body = JSON.stringify({ message: reason });
	socket.end(`HTTP/1.1 ${status} Refused\r\n` +
		'Content-Type: application/json\r\n' +
		`Content-Length: ${Buffer.byteLength(body)}\r\n` +
		'Connection: close\r\n\r\n' + body);
}

const wss = new WebSocketServer({ noServer: true, maxPayload: 64 << 20 });
let lastClose = 'none';

wss.on('connection', (ws, req) => {
	ws.on('message', (data, isBinary) => {
		const text = data.toString();
		let m;
		if (isBinary) {
			ws.send(data, { binary: true });
		} else if ((m = /^repeat (\d+) (.*)$/s.exec(text))) {
			for (let i = 1; i <= +m[1]; i++)
				ws.send(`${m[2]}-${i}`);
		} else if ((m = /^later (\d+) (.*)$/s.exec(text))) {
			const t = m[2];
			setTimeout(() => ws.send(t), +m[1]);
		} else if ((m = /^big (\d+)$/.exec(text))) {
			ws.send('x'.repeat(+m[1]));
		} else if ((m = /^flood (\d+) (\d+)$/.exec(text))) {
			for (let i = 1; i <= +m[1]; i++) {
				const head = `${i}:`;
				ws.send(head + 'y'.repeat(Math.max(0, +m[2] - head.length)));
			}
		} else if (text === 'whoami') {
			ws.send(JSON.stringify({ host: req.headers.host, url: req.url }));
		} else if (text === 'close') {
			ws.close(1000, 'bye');
		} else if (text === 'drop') {
			// terminate() would discard what send() still buffers.
			const drop = () => (ws.bufferedAmount ?
				setTimeout(drop, 10) : ws.terminate());
			drop();
		} else if (text === 'lastclose') {
			ws.send(String(lastClose));
		} else {
			ws.send(text);
		}
	});
	ws.on('error', () => {});
	// ws reports 1006 when the TCP connection ended without a close frame.
	ws.on('close', (code) => { lastClose = code === 1006 ? 'none' : code; });
});

async function onUpgrade(req, socket, head) {
	socket.on('error', () => {});
	const url = new URL(req.url, 'http://placeholder');
	let m;
	if (url.pathname === '/hang')
		return;
	if ((m = /^\/status\/(\d{3})$/.exec(url.pathname))) {
		refuse(socket, +m[1], 'as asked');
		return;
	}
	if (url.pathname.startsWith('/iam')) {
		let why;
		try {
			why = await checkPresign(req, url);
		} catch (e) {
			why = `checker failed: ${e}`;
		}
		if (why) {
			console.error(`ws-echo: 403 for ${url.pathname}: ${why}`);
			refuse(socket, 403, 'Forbidden');
			return;
		}
	}
	wss.handleUpgrade(req, socket, head, (ws) => wss.emit('connection', ws, req));
}

function listen(server) {
	return new Promise((resolve, reject) => {
		server.once('error', reject);
		server.listen(0, '127.0.0.1', () => resolve(server.address().port));
	});
}

const tlsServer = createHttps({ cert: readFileSync(certFile), key: readFileSync(keyFile) });
const plainServer = createHttp();
for (const s of [tlsServer, plainServer]) {
	s.on('upgrade', onUpgrade);
	s.on('request', (req, res) => { res.statusCode = 426; res.end(); });
	s.on('tlsClientError', () => {});
}
const ports = [await listen(tlsServer), await listen(plainServer)];
writeFileSync(portFile + '.tmp', `${ports[0]} ${ports[1]}\n`);
// Renamed into place so the wrapper never reads half a line.
renameSync(portFile + '.tmp', portFile);
for (const sig of ['SIGTERM', 'SIGINT'])
	process.on(sig, () => process.exit(0));
