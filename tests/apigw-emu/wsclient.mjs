#!/usr/bin/env node
// wsclient.mjs: a small WebSocket client for the tests, with the `ws`
// package.
//
//   node wsclient.mjs URL [--connect HOST:PORT] [--cafile FILE] [--presign]
//                     [--expires SECONDS] [--expect N] [--timeout MS]
//                     [--file FILE]... [MESSAGE...]
//
// Connects to URL (wss://{api-id}.execute-api.{region}.amazonaws.com/
// {stage}) -- through HOST:PORT when given, keeping the URL's host name
// for TLS and the Host header, as curl's --connect-to does -- sends each
// MESSAGE as a text frame (then each --file FILE's content, for messages
// too long for a command line argument), prints every message received on its own line
// (a binary one as "binary:<base64>"), and once N messages arrived
// (default: as many as were sent) closes with code 1000 and exits 0.
// --presign signs the URL with SigV4 query parameters (@smithy/signature-
// v4's presign, service execute-api, region from the host) using
// AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and AWS_SESSION_TOKEN.
//
// Exit status: 0 done; 2 bad usage; 3 the server refused the upgrade
// (stdout: "HTTP <status> <body>"); 4 the server closed first (stdout:
// "CLOSE <code> <reason>"); 5 timeout (default 10000 ms); 6 other error.
import { readFileSync } from 'node:fs';
import tls from 'node:tls';
import net from 'node:net';
import { Sha256 } from '@aws-crypto/sha256-js';
import { SignatureV4 } from '@smithy/signature-v4';
import WebSocket from 'ws';

function usage() {
	process.stderr.write('usage: wsclient.mjs URL [--connect HOST:PORT] [--cafile FILE] [--presign] [--expires S] [--expect N] [--timeout MS] [--file FILE]... [MESSAGE...]\n');
	process.exit(2);
}

const o = { messages: [], timeout: 10000, expires: 300 };
for (let i = 2; i < process.argv.length; i++) {
	const a = process.argv[i];
	const val = () => (i + 1 < process.argv.length ? process.argv[++i] : usage());
	if (a === '--connect') o.connect = val();
	else if (a === '--cafile') o.cafile = val();
	else if (a === '--presign') o.presign = true;
	else if (a === '--expires') o.expires = Number(val());
	else if (a === '--expect') o.expect = Number(val());
	else if (a === '--timeout') o.timeout = Number(val());
	else if (a === '--file') (o.files = o.files || []).push(val());
	else if (!o.url) o.url = a;
	else o.messages.push(a);
}
if (!o.url) {
	usage();
}
for (const f of o.files || []) {
	o.late = o.late || [];
	o.late.push(readFileSync(f, 'utf8'));
}
o.messages.push(...(o.late || []));
if (o.expect === undefined) {
	o.expect = o.messages.length;
}

let url = new URL(o.url);
if (o.presign) {
	const region = (/\.execute-api\.([a-z0-9-]+)\.amazonaws\.com$/.exec(url.hostname) || [])[1] || 'us-east-1';
	const credentials = {
		accessKeyId: process.env.AWS_ACCESS_KEY_ID,
		secretAccessKey: process.env.AWS_SECRET_ACCESS_KEY,
		sessionToken: process.env.AWS_SESSION_TOKEN || undefined,
	};
	const signer = new SignatureV4({ credentials, region, service: 'execute-api', sha256: Sha256 });
	const query = Object.fromEntries(url.searchParams);
	const signed = await signer.presign({
		method: 'GET', protocol: url.protocol, hostname: url.hostname, path: url.pathname,
		query, headers: { host: url.host },
	}, { expiresIn: o.expires });
	const qs = Object.entries(signed.query)
		.map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`).join('&');
	url = new URL(`${url.origin}${url.pathname}?${qs}`);
}

const options = { handshakeTimeout: o.timeout };
if (o.cafile) {
	options.ca = readFileSync(o.cafile);
}
if (o.connect) {
	const m = /^(.*):(\d+)$/.exec(o.connect);
	if (!m) {
		usage();
	}
	const [, host, port] = m;
	options.createConnection = (opts) => (url.protocol === 'wss:'
		? tls.connect({ ...opts, host, port: Number(port), servername: url.hostname })
		: net.connect({ host, port: Number(port) }));
}

const timer = setTimeout(() => {
	process.stdout.write('TIMEOUT\n');
	process.exit(5);
}, o.timeout);

let received = 0;
let finished = false;
const ws = new WebSocket(url.href, options);
ws.on('unexpected-response', (req, res) => {
	const chunks = [];
	res.on('data', (c) => chunks.push(c));
	res.on('end', () => {
		process.stdout.write(`HTTP ${res.statusCode} ${Buffer.concat(chunks).toString('utf8')}\n`);
		process.exit(3);
	});
});
ws.on('open', () => {
	for (const m of o.messages) {
		ws.send(m);
	}
	if (o.expect === 0) {
		finished = true;
		ws.close(1000);
	}
});
ws.on('message', (data, isBinary) => {
	if (finished) {
		return;
	}
	process.stdout.write(isBinary ? `binary:${Buffer.from(data).toString('base64')}\n` : `${data.toString('utf8')}\n`);
	if (++received >= o.expect) {
		finished = true;
		ws.close(1000);
	}
});
ws.on('close', (code, reason) => {
	clearTimeout(timer);
	if (finished) {
		process.exit(0);
	}
	process.stdout.write(`CLOSE ${code} ${reason.toString('utf8')}\n`);
	process.exit(4);
});
ws.on('error', (e) => {
	if (!finished) {
		process.stderr.write(`wsclient: ${e.message}\n`);
		process.exit(6);
	}
});
