#!/usr/bin/env node
// ddbcheck.mjs: the independent checker of the filesystem tests.  It talks
// to DynamoDB (Local) with the AWS SDK for JavaScript v3's low-level
// DynamoDBClient, never through dynfs, and keeps every value in DynamoDB's
// typed form: numbers stay the strings DynamoDB sent ({"N": "..."}), so no
// digit is lost to a JavaScript number.
//
//   node ddbcheck.mjs create-table NAME pk:S [sk:N]
//   node ddbcheck.mjs create-tables PREFIX COUNT pk:S     PREFIX0000..
//   node ddbcheck.mjs list-tables                         one name a line
//   node ddbcheck.mjs put TABLE ITEMJSON|-                typed item
//   node ddbcheck.mjs put-many TABLE                      typed items, one a line on stdin
//   node ddbcheck.mjs get TABLE KEYJSON [--plain]         the Item, or null
//   node ddbcheck.mjs delete TABLE KEYJSON
//   node ddbcheck.mjs scan TABLE                          one item a line
//   node ddbcheck.mjs count TABLE
//   node ddbcheck.mjs plain ITEMJSON|-                    render a typed item
//
// Typed JSON is DynamoDB's wire form: {"pk": {"S": "a"}, "b": {"B":
// "<standard base64>"}, "n": {"N": "12.5"}}.  Strings in KEYJSON/ITEMJSON
// can carry any byte as a JSON escape ("\u0001"), so shell quoting never
// has to hold a control byte.
//
// Output layout (get, plain): object keys sorted by byte order at every
// level, 2-space indentation, one trailing newline, strings escaped as
// jq 1.6 does (\" \\ \b \f \n \r \t, other bytes below 0x20 and 0x7F as
// \u00xx) -- the text `jq -S --indent 2 .` prints.  get prints the typed
// Item (binary as standard base64, set members in the order DynamoDB
// returned them).  get --plain and plain print the plain rendering of
// docs/issue 3: S string, N the number with DynamoDB's digits, BOOL, NULL,
// M object, L array, B base64 string, SS sorted by byte order, NS sorted
// by numeric value, BS sorted by the bytes (as base64 strings).  scan
// prints each typed item on one line in the same escaping (compact), the
// lines sorted by byte order.
//
// Environment: DYNFS_TEST_DDB_ENDPOINT (required), AWS_ACCESS_KEY_ID,
// AWS_SECRET_ACCESS_KEY (dummy ones are fine for DynamoDB Local),
// AWS_REGION (default us-east-1).  Exit status 0 on success, 1 on an
// error (printed to stderr), 2 on bad usage.
import { readFileSync } from 'node:fs';
import {
	BatchWriteItemCommand,
	CreateTableCommand,
	DeleteItemCommand,
	DynamoDBClient,
	GetItemCommand,
	ListTablesCommand,
	PutItemCommand,
	ScanCommand,
} from '@aws-sdk/client-dynamodb';

function die(msg, code = 1) {
	process.stderr.write(`ddbcheck: ${msg}\n`);
	process.exit(code);
}

function usage() {
	die('usage: ddbcheck.mjs create-table|create-tables|list-tables|put|put-many|get|delete|scan|count|plain ...', 2);
}

// --- JSON text, jq style ------------------------------------------------
// A number token to print as is (the exact digits DynamoDB sent).
class RawNumber {
	constructor(text) {
		this.text = text;
	}
}

function escapeString(s) {
	let out = '"';
	for (const ch of s) {
		const c = ch.codePointAt(0);
		switch (ch) {
		case '"': out += '\\"'; break;
		case '\\': out += '\\\\'; break;
		case '\b': out += '\\b'; break;
		case '\f': out += '\\f'; break;
		case '\n': out += '\\n'; break;
		case '\r': out += '\\r'; break;
		case '\t': out += '\\t'; break;
		default:
			if (c < 0x20 || c === 0x7f)
				out += '\\u' + c.toString(16).padStart(4, '0');
			else
				out += ch;
		}
	}
	return out + '"';
}

// Byte order of the UTF-8 encodings (JavaScript's < compares UTF-16).
function byteCompare(a, b) {
	return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

// dump(v, indent): indent null for compact output, else the step (2).
function dump(v, indent, depth = 0) {
	const nl = indent === null ? '' : '\n' + ' '.repeat(indent * (depth + 1));
	const end = indent === null ? '' : '\n' + ' '.repeat(indent * depth);
	const colon = indent === null ? ':' : ': ';
	if (v === null)
		return 'null';
	if (v instanceof RawNumber)
		return v.text;
	if (typeof v === 'boolean')
		return v ? 'true' : 'false';
	if (typeof v === 'string')
		return escapeString(v);
	if (Array.isArray(v)) {
		if (v.length === 0)
			return '[]';
		return '[' + v.map((x) => nl + dump(x, indent, depth + 1)).join(',') + end + ']';
	}
	if (typeof v === 'object') {
		const keys = Object.keys(v).sort(byteCompare);
		if (keys.length === 0)
			return '{}';
		return '{' + keys.map((k) => nl + escapeString(k) + colon +
			dump(v[k], indent, depth + 1)).join(',') + end + '}';
	}
	die(`cannot print a ${typeof v}`);
}

// --- typed values ---------------------------------------------------------
function b64(u8) {
	return Buffer.from(u8).toString('base64');
}

// The SDK's AttributeValue (Uint8Array for binary) -> wire form.
function toWire(av) {
	const [type, v] = Object.entries(av).find(([, x]) => x !== undefined);
	switch (type) {
	case 'B': return { B: b64(v) };
	case 'BS': return { BS: v.map(b64) };
	case 'L': return { L: v.map(toWire) };
	case 'M': return { M: mapValues(v, toWire) };
	default: return { [type]: v };
	}
}

// Wire form (base64 strings) -> the SDK's AttributeValue.
function fromWire(av, where) {
	if (av === null || typeof av !== 'object' || Array.isArray(av))
		die(`${where}: not a typed value: ${JSON.stringify(av)}`);
	const types = Object.keys(av);
	if (types.length !== 1)
		die(`${where}: a typed value has exactly one type: ${JSON.stringify(av)}`);
	const type = types[0];
	const v = av[type];
	switch (type) {
	case 'S': case 'N': case 'BOOL': case 'NULL': case 'SS': case 'NS':
		return { [type]: v };
	case 'B': return { B: Buffer.from(v, 'base64') };
	case 'BS': return { BS: v.map((x) => Buffer.from(x, 'base64')) };
	case 'L': return { L: v.map((x, i) => fromWire(x, `${where}[${i}]`)) };
	case 'M': return { M: mapValues(v, (x, k) => fromWire(x, `${where}.${k}`)) };
	default: die(`${where}: unknown type ${type}`);
	}
}

function mapValues(o, f) {
	return Object.fromEntries(Object.entries(o).map(([k, x]) => [k, f(x, k)]));
}

function itemFromWire(obj, what) {
	if (obj === null || typeof obj !== 'object' || Array.isArray(obj))
		die(`${what} must be a JSON object of typed values`);
	return mapValues(obj, (x, k) => fromWire(x, k));
}

// Numeric order of two DynamoDB number texts, exactly (no doubles).
function parseDecimal(t) {
	const m = /^([+-]?)(\d*)(?:\.(\d*))?(?:[eE]([+-]?\d+))?$/.exec(t.trim());
	if (!m)
		die(`not a number: ${t}`);
	let digits = (m[2] || '') + (m[3] || '');
	let exp = (m[4] ? parseInt(m[4], 10) : 0) - (m[3] || '').length;
	digits = digits.replace(/^0+/, '');
	if (digits === '')
		return { sign: 0, digits: '', exp: 0 };
	const trail = digits.length - digits.replace(/0+$/, '').length;
	digits = digits.slice(0, digits.length - trail);
	exp += trail;
	return { sign: m[1] === '-' ? -1 : 1, digits, exp };
}

function numCompare(a, b) {
	const x = parseDecimal(a);
	const y = parseDecimal(b);
	if (x.sign !== y.sign)
		return x.sign < y.sign ? -1 : 1;
	if (x.sign === 0)
		return 0;
	// Magnitude: compare the position of the leading digit, then digits.
	const mx = x.digits.length + x.exp;
	const my = y.digits.length + y.exp;
	let c;
	if (mx !== my) {
		c = mx < my ? -1 : 1;
	} else {
		const n = Math.max(x.digits.length, y.digits.length);
		const dx = x.digits.padEnd(n, '0');
		const dy = y.digits.padEnd(n, '0');
		c = dx < dy ? -1 : dx > dy ? 1 : 0;
	}
	return x.sign * c;
}

// Wire form -> plain JSON value (RawNumber for numbers).
function plain(av) {
	const [type, v] = Object.entries(av)[0];
	switch (type) {
	case 'S': return v;
	case 'N': return new RawNumber(v);
	case 'BOOL': return v;
	case 'NULL': return null;
	case 'B': return v;
	case 'M': return mapValues(v, plain);
	case 'L': return v.map(plain);
	case 'SS': return [...v].sort(byteCompare);
	case 'NS': return [...v].sort(numCompare).map((x) => new RawNumber(x));
	case 'BS': return [...v].sort((a, b) => Buffer.compare(
		Buffer.from(a, 'base64'), Buffer.from(b, 'base64')));
	default: die(`unknown type ${type}`);
	}
}

function plainItem(wireItem) {
	return mapValues(wireItem, plain);
}

// --- commands ---------------------------------------------------------------
function client() {
	// The SDK's notice about future Node versions is not a test result.
	process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true';
	const endpoint = process.env.DYNFS_TEST_DDB_ENDPOINT;
	if (!endpoint)
		die('DYNFS_TEST_DDB_ENDPOINT is not set');
	return new DynamoDBClient({
		endpoint,
		region: process.env.AWS_REGION || 'us-east-1',
		credentials: {
			accessKeyId: process.env.AWS_ACCESS_KEY_ID || 'AKIADYNFSCHECKER000',
			secretAccessKey: process.env.AWS_SECRET_ACCESS_KEY || 'dummy',
		},
		maxAttempts: 3,
	});
}

function jsonArg(arg, what) {
	const text = arg === '-' ? readFileSync(0, 'utf8') : arg;
	if (text === undefined)
		usage();
	try {
		return JSON.parse(text);
	} catch (e) {
		die(`${what} is not JSON: ${e.message}`);
	}
}

function keyDefs(specs) {
	const attrs = [];
	const schema = [];
	specs.forEach((spec, i) => {
		const m = /^([^:]+):([SNB])$/.exec(spec);
		if (!m)
			die(`bad key spec '${spec}' (want NAME:S, NAME:N or NAME:B)`, 2);
		attrs.push({ AttributeName: m[1], AttributeType: m[2] });
		schema.push({ AttributeName: m[1], KeyType: i === 0 ? 'HASH' : 'RANGE' });
	});
	if (schema.length < 1 || schema.length > 2)
		usage();
	return { AttributeDefinitions: attrs, KeySchema: schema };
}

async function createTable(c, name, specs) {
	await c.send(new CreateTableCommand({
		TableName: name,
		BillingMode: 'PAY_PER_REQUEST',
		...keyDefs(specs),
	}));
}

async function scanAll(c, table, extra = {}) {
	const items = [];
	let count = 0;
	let start;
	do {
		const out = await c.send(new ScanCommand({
			TableName: table, ConsistentRead: true, ExclusiveStartKey: start, ...extra,
		}));
		if (out.Items)
			items.push(...out.Items);
		count += out.Count || 0;
		start = out.LastEvaluatedKey;
	} while (start);
	return { items, count };
}

async function main() {
	const [cmd, ...args] = process.argv.slice(2);
	if (!cmd)
		usage();
	if (cmd === 'plain') {
		process.stdout.write(dump(plainItem(jsonArg(args[0], 'ITEMJSON')), 2) + '\n');
		return;
	}
	const c = client();
	try {
		switch (cmd) {
		case 'create-table':
			if (args.length < 2)
				usage();
			await createTable(c, args[0], args.slice(1));
			break;
		case 'create-tables': {
			const [prefix, n, ...specs] = args;
			for (let i = 0; i < Number(n); i++)
				await createTable(c, prefix + String(i).padStart(4, '0'), specs);
			break;
		}
		case 'list-tables': {
			const names = [];
			let start;
			do {
				const out = await c.send(new ListTablesCommand({ ExclusiveStartTableName: start }));
				names.push(...(out.TableNames || []));
				start = out.LastEvaluatedTableName;
			} while (start);
			for (const n of names.sort(byteCompare))
				process.stdout.write(n + '\n');
			break;
		}
		case 'put':
			if (args.length !== 2)
				usage();
			await c.send(new PutItemCommand({
				TableName: args[0], Item: itemFromWire(jsonArg(args[1], 'ITEMJSON'), 'ITEMJSON'),
			}));
			break;
		case 'put-many': {
			if (args.length !== 1)
				usage();
			const lines = readFileSync(0, 'utf8').split('\n').filter((l) => l.trim());
			for (let i = 0; i < lines.length; i += 25) {
				let reqs = { [args[0]]: lines.slice(i, i + 25).map((l) => ({
					PutRequest: { Item: itemFromWire(JSON.parse(l), 'item') },
				})) };
				for (let tries = 0; reqs && Object.keys(reqs).length; tries++) {
					if (tries > 20)
						die('BatchWriteItem keeps leaving items unprocessed');
					const out = await c.send(new BatchWriteItemCommand({ RequestItems: reqs }));
					reqs = out.UnprocessedItems;
				}
			}
			break;
		}
		case 'get': {
			if (args.length < 2 || args.length > 3 || (args[2] && args[2] !== '--plain'))
				usage();
			const out = await c.send(new GetItemCommand({
				TableName: args[0], Key: itemFromWire(jsonArg(args[1], 'KEYJSON'), 'KEYJSON'),
				ConsistentRead: true,
			}));
			if (!out.Item) {
				process.stdout.write('null\n');
				break;
			}
			const wire = mapValues(out.Item, toWire);
			process.stdout.write(dump(args[2] ? plainItem(wire) : wire, 2) + '\n');
			break;
		}
		case 'delete':
			if (args.length !== 2)
				usage();
			await c.send(new DeleteItemCommand({
				TableName: args[0], Key: itemFromWire(jsonArg(args[1], 'KEYJSON'), 'KEYJSON'),
			}));
			break;
		case 'scan': {
			if (args.length !== 1)
				usage();
			const { items } = await scanAll(c, args[0]);
			const lines = items.map((it) => dump(mapValues(it, toWire), null)).sort(byteCompare);
			for (const l of lines)
				process.stdout.write(l + '\n');
			break;
		}
		case 'count': {
			if (args.length !== 1)
				usage();
			const { count } = await scanAll(c, args[0], { Select: 'COUNT' });
			process.stdout.write(`${count}\n`);
			break;
		}
		default:
			usage();
		}
	} catch (e) {
		die(`${cmd} ${args[0] ?? ''}: ${e.name}: ${e.message}`);
	} finally {
		c.destroy();
	}
}

await main();
