// backend.mjs: the HTTP back end the test APIs' HTTP/HTTP_PROXY
// integrations point at (plain HTTP on 127.0.0.1).  server.mjs starts it
// in its own process; `node backend.mjs --port-file FILE` runs it alone.
//
// By the request path's last segments:
//   .../slow       wait ?ms=N milliseconds (default 5000, at most 600000)
//                  before answering like the echo below
//   .../big        ?bytes=N (default 1048576, at most 268435456) bytes of
//                  text/plain, streamed: the lines "%015d\n" of 0, 1, 2, ...
//                  (16 bytes a line; `seq -f '%015.0f' 0 N | head -c BYTES`
//                  makes the same bytes), the last one cut at N bytes
//   .../status/NNN answer with status NNN (100 < NNN < 600) and the echo
//   anything else  200 and the echo
// The echo is a JSON object: {"method", "path" (raw), "query" (the raw
// query string, without "?"), "queryParams" ({name: value, or [values]
// when repeated}), "headers" ({lower-case name: value}), "body" (the body
// as text; null when it is not UTF-8) and "bodyBase64" (always)}.
// Every answer carries "x-backend: dynfs-test-backend".
import http from 'node:http';
import { writeFileSync, renameSync } from 'node:fs';

function utf8OrNull(buf) {
	const s = buf.toString('utf8');
	return Buffer.from(s, 'utf8').equals(buf) ? s : null;
}

function echoObject(req, body) {
	const q = req.url.indexOf('?');
	const path = q < 0 ? req.url : req.url.slice(0, q);
	const query = q < 0 ? '' : req.url.slice(q + 1);
	const queryParams = {};
	for (const [k, v] of new URLSearchParams(query)) {
		queryParams[k] = Object.hasOwn(queryParams, k) ? [].concat(queryParams[k], v) : v;
	}
	const headers = {};
	for (let i = 0; i + 1 < req.rawHeaders.length; i += 2) {
		const n = req.rawHeaders[i].toLowerCase();
		headers[n] = n in headers ? `${headers[n]}, ${req.rawHeaders[i + 1]}` : req.rawHeaders[i + 1];
	}
	return {
		method: req.method, path, query, queryParams, headers,
		body: utf8OrNull(body), bodyBase64: body.toString('base64'),
	};
}

function bigBody(res, total) {
	res.writeHead(200, {
		'Content-Type': 'text/plain',
		'Content-Length': total,
		'x-backend': 'dynfs-test-backend',
	});
	let sent = 0;
	let line = 0;
	const write = () => {
		while (sent < total) {
			const parts = [];
			let n = 0;
			while (n < 65536 && sent + n < total) {
				const l = `${String(line++).padStart(15, '0')}\n`;
				parts.push(l);
				n += l.length;
			}
			let chunk = Buffer.from(parts.join(''));
			if (sent + chunk.length > total) {
				chunk = chunk.subarray(0, total - sent);
			}
			sent += chunk.length;
			if (!res.write(chunk)) {
				res.once('drain', write);
				return;
			}
		}
		res.end();
	};
	write();
}

function num(params, name, dflt, max) {
	const v = Number(params.get(name));
	if (!params.has(name) || !Number.isFinite(v) || v < 0) {
		return dflt;
	}
	return Math.min(Math.trunc(v), max);
}

export function backendHandler(req, res) {
	const chunks = [];
	req.on('data', (c) => chunks.push(c));
	req.on('end', () => {
		const body = Buffer.concat(chunks);
		const q = req.url.indexOf('?');
		const path = q < 0 ? req.url : req.url.slice(0, q);
		const params = new URLSearchParams(q < 0 ? '' : req.url.slice(q + 1));
		const segs = path.split('/').filter(Boolean);
		const last = segs[segs.length - 1];
		const reply = (status) => {
			const out = Buffer.from(JSON.stringify(echoObject(req, body)));
			res.writeHead(status, {
				'Content-Type': 'application/json',
				'Content-Length': out.length,
				'x-backend': 'dynfs-test-backend',
			});
			res.end(out);
		};
		if (last === 'big') {
			bigBody(res, num(params, 'bytes', 1048576, 268435456));
		} else if (last === 'slow') {
			const t = setTimeout(() => reply(200), num(params, 'ms', 5000, 600000));
			res.on('close', () => clearTimeout(t));
		} else if (segs.length >= 2 && segs[segs.length - 2] === 'status' && /^[1-5]\d\d$/.test(last) && Number(last) > 100) {
			reply(Number(last));
		} else {
			reply(200);
		}
	});
}

export function startBackend(host = '127.0.0.1', port = 0) {
	return new Promise((resolve, reject) => {
		const s = http.createServer(backendHandler);
		s.on('error', reject);
		s.listen(port, host, () => resolve(s));
	});
}

// Run alone: node backend.mjs --port-file FILE
if (import.meta.url === `file://${process.argv[1]}`) {
	const i = process.argv.indexOf('--port-file');
	const s = await startBackend();
	const port = s.address().port;
	if (i > 0) {
		writeFileSync(`${process.argv[i + 1]}.tmp`, `${port}\n`);
		renameSync(`${process.argv[i + 1]}.tmp`, process.argv[i + 1]);
	}
	process.stderr.write(`backend: listening on 127.0.0.1:${port}\n`);
	process.on('SIGTERM', () => process.exit(0));
}
