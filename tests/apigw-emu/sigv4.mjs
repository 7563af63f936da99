// sigv4.mjs: verification of AWS Signature Version 4 as the execute-api
// and Lambda front ends do it, for the emulator (docs/testing-apis.md).
//
// The signature is recomputed with @smithy/signature-v4 over the request
// exactly as it arrived: the raw path, the query string, only the headers
// the client listed in SignedHeaders (with their received values), the
// client's X-Amz-Date, and the SHA-256 of the received body.  The result
// is compared with the client's signature.
//
// Every failure is { ok: false, status: 403, type, message }: `type` goes
// into the x-amzn-ErrorType header and `message` into {"message": ...},
// as API Gateway and Lambda answer.
import { createHash, timingSafeEqual } from 'node:crypto';
import { Sha256 } from '@aws-crypto/sha256-js';
import { SignatureV4 } from '@smithy/signature-v4';

export const MISMATCH_MESSAGE =
	'The request signature we calculated does not match the signature you provided. ' +
	'Check your AWS Secret Access Key and signing method. ' +
	'Consult the service documentation for details.';

const EMPTY_SHA256 = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';

// How far X-Amz-Date may be from the emulator's clock (AWS: 15 minutes;
// EMU_MAX_SKEW_SECONDS overrides, for tests of the check itself).
const MAX_SKEW_MS = 1000 * Number(process.env.EMU_MAX_SKEW_SECONDS || 15 * 60);

function fail(type, message) {
	return { ok: false, status: 403, type, message };
}

// The accepted credentials, from the environment.
export function credentialsFromEnv(env = process.env) {
	const accessKeyId = env.EMU_ACCESS_KEY_ID;
	const secretAccessKey = env.EMU_SECRET_ACCESS_KEY;
	if (!accessKeyId || !secretAccessKey) {
		return null;
	}
	const c = { accessKeyId, secretAccessKey };
	if (env.EMU_SESSION_TOKEN) {
		c.sessionToken = env.EMU_SESSION_TOKEN;
	}
	return c;
}

// Header name (lower case) -> value; repeated headers joined with ",".
export function headerMap(rawHeaders) {
	const out = {};
	for (let i = 0; i + 1 < rawHeaders.length; i += 2) {
		const name = rawHeaders[i].toLowerCase();
		out[name] = name in out ? `${out[name]},${rawHeaders[i + 1]}` : rawHeaders[i + 1];
	}
	return out;
}

function safeDecode(s) {
	try {
		return decodeURIComponent(s);
	} catch {
		return s;
	}
}

// The raw query string -> { key: value | [values] }, decoded (a "+" stays
// a "+": SigV4 clients encode a space as %20).
export function parseQuery(raw) {
	const query = {};
	if (!raw) {
		return query;
	}
	for (const part of raw.split('&')) {
		if (part === '') {
			continue;
		}
		const eq = part.indexOf('=');
		const k = safeDecode(eq < 0 ? part : part.slice(0, eq));
		const v = eq < 0 ? '' : safeDecode(part.slice(eq + 1));
		if (Object.hasOwn(query, k)) {
			query[k] = [].concat(query[k], v);
		} else {
			query[k] = v;
		}
	}
	return query;
}

// "20240102T030405Z" -> Date, or null.
function parseAmzDate(s) {
	const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(s || '');
	if (!m) {
		return null;
	}
	const d = new Date(Date.UTC(+m[1], +m[2] - 1, +m[3], +m[4], +m[5], +m[6]));
	return Number.isNaN(d.getTime()) ? null : d;
}

function amzDate(d) {
	return d.toISOString().replace(/[-:]/g, '').replace(/\.\d{3}Z$/, 'Z');
}

function sameHex(a, b) {
	if (typeof a !== 'string' || typeof b !== 'string' || a.length !== b.length) {
		return false;
	}
	return timingSafeEqual(Buffer.from(a), Buffer.from(b));
}

// Checks common to both forms: the credential scope and the key.
function checkScope(credential, { service, region, creds }) {
	const parts = (credential || '').split('/');
	if (parts.length !== 5 || parts[4] !== 'aws4_request') {
		return fail('IncompleteSignatureException',
			`Credential should be scoped to a valid region, not '${parts[2] || ''}'. ` +
			`Credential should be scoped to correct service: '${service}'. ` +
			"Credential should be scoped with a valid terminator: 'aws4_request', " +
			`not '${parts[4] || ''}'.`);
	}
	const [ak, , scopeRegion, scopeService] = parts;
	if (ak !== creds.accessKeyId) {
		return fail('UnrecognizedClientException', 'The security token included in the request is invalid.');
	}
	if (scopeService !== service) {
		return fail('InvalidSignatureException', `Credential should be scoped to correct service: '${service}'. `);
	}
	if (scopeRegion !== region) {
		return fail('InvalidSignatureException',
			`Credential should be scoped to a valid region, not '${scopeRegion}'. `);
	}
	return { ok: true, shortDate: parts[1] };
}

function checkDate(date, shortDate, now, expiresSeconds) {
	const d = parseAmzDate(date);
	if (!d) {
		return fail('IncompleteSignatureException',
			`Date must be in ISO-8601 'basic format'. Got '${date}'. See http://en.wikipedia.org/wiki/ISO_8601`);
	}
	if (shortDate !== date.slice(0, 8)) {
		return fail('InvalidSignatureException',
			`Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '${shortDate}' != '${date.slice(0, 8)}', from '${date}'.`);
	}
	const t = now.getTime();
	if (expiresSeconds !== undefined) {
		if (d.getTime() - MAX_SKEW_MS > t) {
			return fail('InvalidSignatureException',
				`Signature not yet current: ${date} is still later than ${amzDate(new Date(t + MAX_SKEW_MS))}`);
		}
		if (d.getTime() + expiresSeconds * 1000 < t) {
			return fail('InvalidSignatureException',
				`Signature expired: ${amzDate(new Date(d.getTime() + expiresSeconds * 1000))} is now earlier than ${amzDate(now)}`);
		}
	} else if (d.getTime() < t - MAX_SKEW_MS) {
		return fail('InvalidSignatureException',
			`Signature expired: ${date} is now earlier than ${amzDate(new Date(t - MAX_SKEW_MS))} (${amzDate(now)} - ${MAX_SKEW_MS / 60000} min.)`);
	} else if (d.getTime() > t + MAX_SKEW_MS) {
		return fail('InvalidSignatureException',
			`Signature not yet current: ${date} is still later than ${amzDate(new Date(t + MAX_SKEW_MS))} (${amzDate(now)} + ${MAX_SKEW_MS / 60000} min.)`);
	}
	return { ok: true, date: d };
}

function signerFor(creds, sessionToken, region, service) {
	const credentials = { accessKeyId: creds.accessKeyId, secretAccessKey: creds.secretAccessKey };
	if (sessionToken) {
		credentials.sessionToken = sessionToken;
	}
	return new SignatureV4({ credentials, region, service, sha256: Sha256, uriEscapePath: true, applyChecksum: false });
}

function checkToken(token, creds) {
	if ((token || '') !== (creds.sessionToken || '')) {
		return fail('UnrecognizedClientException', 'The security token included in the request is invalid.');
	}
	return { ok: true };
}

// Parse "AWS4-HMAC-SHA256 Credential=..., SignedHeaders=..., Signature=...".
function parseAuthorization(value) {
	const sp = value.indexOf(' ');
	const algorithm = sp < 0 ? value : value.slice(0, sp);
	const fields = {};
	for (const item of (sp < 0 ? '' : value.slice(sp + 1)).split(',')) {
		const eq = item.indexOf('=');
		if (eq > 0) {
			fields[item.slice(0, eq).trim()] = item.slice(eq + 1).trim();
		}
	}
	return { algorithm, fields };
}

// The request to recompute: only the signed headers, with their values.
function signedRequest(req, signedList, query) {
	const headers = {};
	for (const h of signedList) {
		if (!Object.hasOwn(req.headers, h)) {
			return null;
		}
		headers[h] = req.headers[h];
	}
	return {
		method: req.method,
		protocol: 'https:',
		hostname: (req.headers.host || '').replace(/:\d+$/, ''),
		path: req.path,
		query,
		headers,
	};
}

// Verify a request signed in its Authorization header.  req: { method,
// path (raw, without the query), rawQuery, headers (headerMap), body
// (Buffer) }.  opts: { service, region, creds, now }.
export async function verifyHeaderSigned(req, opts) {
	const { service, region, creds } = opts;
	const now = opts.now || new Date();
	const auth = req.headers.authorization;
	if (!auth) {
		return fail('MissingAuthenticationTokenException', 'Missing Authentication Token');
	}
	const { algorithm, fields } = parseAuthorization(auth);
	if (algorithm !== 'AWS4-HMAC-SHA256') {
		return fail('IncompleteSignatureException',
			`Authorization header requires existence of a valid AWS4-HMAC-SHA256 algorithm. Authorization=${algorithm}`);
	}
	const missing = [];
	for (const f of ['Credential', 'Signature', 'SignedHeaders']) {
		if (!fields[f]) {
			missing.push(`Authorization header requires '${f}' parameter.`);
		}
	}
	const date = req.headers['x-amz-date'];
	if (!date) {
		missing.push("Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header.");
	}
	if (missing.length) {
		return fail('IncompleteSignatureException', `${missing.join(' ')} Authorization=${auth}`);
	}
	const scope = checkScope(fields.Credential, opts);
	if (!scope.ok) {
		return scope;
	}
	const signedList = fields.SignedHeaders.split(';').filter(Boolean);
	if (!signedList.includes('host')) {
		return fail('InvalidSignatureException', "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization.");
	}
	if (!signedList.includes('x-amz-date')) {
		// smithy always signs x-amz-date; a client that signed only Date
		// cannot be checked here.
		return fail('InvalidSignatureException', MISMATCH_MESSAGE);
	}
	const dc = checkDate(date, scope.shortDate, now);
	if (!dc.ok) {
		return dc;
	}
	const token = req.headers['x-amz-security-token'];
	const tc = checkToken(token, creds);
	if (!tc.ok) {
		return tc;
	}
	const bodyHash = createHash('sha256').update(req.body || Buffer.alloc(0)).digest('hex');
	const claimed = req.headers['x-amz-content-sha256'];
	if (claimed !== undefined && claimed !== 'UNSIGNED-PAYLOAD' && claimed !== bodyHash) {
		return fail('InvalidSignatureException', MISMATCH_MESSAGE);
	}
	const request = signedRequest(req, signedList, parseQuery(req.rawQuery));
	if (!request) {
		return fail('InvalidSignatureException', MISMATCH_MESSAGE);
	}
	request.body = req.body && req.body.length ? req.body : undefined;
	// The token is signed with the request only when the client listed it.
	const signer = signerFor(creds, signedList.includes('x-amz-security-token') ? token : undefined, region, service);
	const signed = await signer.sign(request, {
		signingDate: dc.date,
		signableHeaders: new Set(signedList),
	});
	const m = /Signature=([0-9a-f]+)/.exec(signed.headers.authorization || '');
	const sh = /SignedHeaders=([^,]+)/.exec(signed.headers.authorization || '');
	if (!m || !sh || sh[1] !== signedList.join(';') || !sameHex(m[1], fields.Signature)) {
		return fail('InvalidSignatureException', MISMATCH_MESSAGE);
	}
	return { ok: true, accessKeyId: creds.accessKeyId };
}

// Verify a presigned URL (the query carries X-Amz-Algorithm, -Credential,
// -Date, -Expires, -SignedHeaders, -Signature[, -Security-Token]).
export async function verifyPresigned(req, opts) {
	const { service, region, creds } = opts;
	const now = opts.now || new Date();
	const query = parseQuery(req.rawQuery);
	const q = (k) => (typeof query[k] === 'string' ? query[k] : undefined);
	if (!q('X-Amz-Signature') && !q('X-Amz-Credential')) {
		return fail('MissingAuthenticationTokenException', 'Missing Authentication Token');
	}
	const missing = [];
	for (const k of ['X-Amz-Algorithm', 'X-Amz-Credential', 'X-Amz-Date', 'X-Amz-Expires',
		'X-Amz-SignedHeaders', 'X-Amz-Signature']) {
		if (!q(k)) {
			missing.push(`AWS query-string parameters must include '${k}'.`);
		}
	}
	if (missing.length) {
		return fail('IncompleteSignatureException', `${missing.join(' ')} Re-examine the query-string parameters.`);
	}
	if (q('X-Amz-Algorithm') !== 'AWS4-HMAC-SHA256') {
		return fail('IncompleteSignatureException', "X-Amz-Algorithm only supports 'AWS4-HMAC-SHA256'");
	}
	const scope = checkScope(q('X-Amz-Credential'), opts);
	if (!scope.ok) {
		return scope;
	}
	const expires = Number(q('X-Amz-Expires'));
	if (!Number.isInteger(expires) || expires < 0 || expires > 604800) {
		return fail('IncompleteSignatureException', 'X-Amz-Expires must be a number of seconds between 0 and 604800.');
	}
	const dc = checkDate(q('X-Amz-Date'), scope.shortDate, now, expires);
	if (!dc.ok) {
		return dc;
	}
	const token = q('X-Amz-Security-Token');
	const tc = checkToken(token, creds);
	if (!tc.ok) {
		return tc;
	}
	const signedList = q('X-Amz-SignedHeaders').split(';').filter(Boolean);
	if (!signedList.includes('host')) {
		return fail('InvalidSignatureException', MISMATCH_MESSAGE);
	}
	const rest = { ...query };
	delete rest['X-Amz-Signature'];
	const request = signedRequest(req, signedList, rest);
	if (!request) {
		return fail('InvalidSignatureException', MISMATCH_MESSAGE);
	}
	if (req.body && req.body.length) {
		request.body = req.body;
	}
	const signer = signerFor(creds, token, region, service);
	const signed = await signer.presign(request, {
		signingDate: dc.date,
		expiresIn: expires,
		signableHeaders: new Set(signedList),
		unhoistableHeaders: new Set(signedList),
	});
	if (signed.query['X-Amz-SignedHeaders'] !== signedList.join(';') ||
		!sameHex(signed.query['X-Amz-Signature'], q('X-Amz-Signature'))) {
		return fail('InvalidSignatureException', MISMATCH_MESSAGE);
	}
	return { ok: true, accessKeyId: creds.accessKeyId };
}

// Whichever form the request uses (a presigned query wins when there is
// no Authorization header).
export function verifyAny(req, opts) {
	if (!req.headers.authorization && /(^|&)X-Amz-(Signature|Credential)=/.test(req.rawQuery || '')) {
		return verifyPresigned(req, opts);
	}
	return verifyHeaderSigned(req, opts);
}

export { EMPTY_SHA256 };
