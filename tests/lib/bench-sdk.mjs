#!/usr/bin/env node
// bench-sdk.mjs: the AWS SDK for JavaScript v3 side of contrib/bench.sh.
// contrib/bench.sh runs it in a new node process for every measurement, so
// a timed run includes node's start and the SDK's load, as a script a user
// runs would.
//
//   node bench-sdk.mjs create TABLE            a table with partition key pk (S)
//   node bench-sdk.mjs delete TABLE            (missing is fine)
//   node bench-sdk.mjs reset TABLE             delete + create: an empty table
//   node bench-sdk.mjs load TABLE N [INFLIGHT] N generated items (BatchWriteItem,
//                                              INFLIGHT requests at once, default 8)
//   node bench-sdk.mjs gen DIR N               the same N items as plain JSON
//                                              files DIR/<pk>.json (for cp)
//   node bench-sdk.mjs cli-batches SRC DST [TABLE]
//                                              SRC's JSON files as request files
//                                              for `aws dynamodb batch-write-item`
//                                              (25 puts each), DST/batch-NNNNN.json
//   node bench-sdk.mjs scan TABLE              paginated Scan of every item;
//                                              prints "items N attrs A"
//   node bench-sdk.mjs write-dir TABLE DIR [INFLIGHT]
//                                              every DIR/*.json as an item (key =
//                                              file name), BatchWriteItem with
//                                              INFLIGHT (default 4) requests at once
//   node bench-sdk.mjs count TABLE             Select COUNT scan; prints N
//
// Environment: BENCH_ENDPOINT (required), AWS_ACCESS_KEY_ID,
// AWS_SECRET_ACCESS_KEY, AWS_REGION (default us-east-1).  Exit status 0,
// or 1 with a message on stderr.
import { mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
	BatchWriteItemCommand,
	CreateTableCommand,
	DeleteTableCommand,
	DescribeTableCommand,
	DynamoDBClient,
	ScanCommand,
} from '@aws-sdk/client-dynamodb';
import { marshall } from '@aws-sdk/util-dynamodb';

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true';

function die(msg) {
	process.stderr.write(`bench-sdk: ${msg}\n`);
	process.exit(1);
}

function client() {
	const endpoint = process.env.BENCH_ENDPOINT;
	if (!endpoint)
		die('BENCH_ENDPOINT is not set');
	return new DynamoDBClient({
		endpoint,
		region: process.env.AWS_REGION || 'us-east-1',
		credentials: {
			accessKeyId: process.env.AWS_ACCESS_KEY_ID || 'AKIADYNFSBENCH000000',
			secretAccessKey: process.env.AWS_SECRET_ACCESS_KEY || 'dummy',
		},
		maxAttempts: 10,
	});
}

// --- the items ----------------------------------------------------------
// A small deterministic generator (xorshift32), so every run and every
// tool sees the same data.
function rng(seed) {
	let x = (seed * 2654435761) >>> 0 || 1;
	return () => {
		x ^= x << 13; x >>>= 0;
		x ^= x >>> 17;
		x ^= x << 5; x >>>= 0;
		return x / 4294967296;
	};
}

const FIRST = ['Ada', 'Grace', 'Linus', 'Ken', 'Barbara', 'Dennis', 'Margaret', 'Alan',
	'Frances', 'Edsger', 'Radia', 'John', 'Hedy', 'Niklaus', 'Karen', 'Donald'];
const LAST = ['Lovelace', 'Hopper', 'Torvalds', 'Thompson', 'Liskov', 'Ritchie', 'Hamilton',
	'Turing', 'Allen', 'Dijkstra', 'Perlman', 'McCarthy', 'Lamarr', 'Wirth', 'Jones', 'Knuth'];
const CITIES = ['Lisbon', 'Oslo', 'Kyoto', 'Austin', 'Lagos', 'Quito', 'Perth', 'Tallinn'];
const TAGS = ['admin', 'beta', 'billing', 'eu', 'us', 'apac', 'trial', 'vip', 'legacy', 'mobile'];
const PLANS = ['free', 'team', 'business', 'enterprise'];

// Item i as a plain JS object: about 250 bytes of JSON, mixed types
// (strings, integers, decimals, booleans, null, a list, a map).
export function makeItem(i) {
	const r = rng(i + 1);
	const pick = (a) => a[Math.floor(r() * a.length)];
	const first = pick(FIRST);
	const last = pick(LAST);
	const tags = [];
	for (let k = 0, n = 1 + Math.floor(r() * 3); k < n; k++) {
		const t = pick(TAGS);
		if (!tags.includes(t))
			tags.push(t);
	}
	const day = 1 + Math.floor(r() * 28);
	const month = 1 + Math.floor(r() * 12);
	return {
		pk: `user-${String(i).padStart(7, '0')}`,
		name: `${first} ${last}`,
		email: `${first}.${last}${i}@example.com`.toLowerCase(),
		plan: pick(PLANS),
		age: 18 + Math.floor(r() * 60),
		balance: Math.round(r() * 1e6) / 100,
		active: r() < 0.8,
		manager: r() < 0.3 ? null : `user-${String(Math.floor(r() * 1000)).padStart(7, '0')}`,
		tags,
		address: {
			street: `${1 + Math.floor(r() * 999)} ${pick(LAST)} Street`,
			city: pick(CITIES),
			zip: String(10000 + Math.floor(r() * 89999)),
		},
		created: `2024-${String(month).padStart(2, '0')}-${String(day).padStart(2, '0')}T12:00:00Z`,
	};
}

function toAv(obj) {
	return marshall(obj, { removeUndefinedValues: true });
}

// --- writing ----------------------------------------------------------------
// Write typed items with BatchWriteItem, INFLIGHT requests at once, each
// request's unprocessed items retried.
async function batchWrite(c, table, avItems, inflight) {
	const batches = [];
	for (let i = 0; i < avItems.length; i += 25)
		batches.push(avItems.slice(i, i + 25));
	let next = 0;
	async function worker() {
		while (next < batches.length) {
			const b = batches[next++];
			let reqs = { [table]: b.map((Item) => ({ PutRequest: { Item } })) };
			for (let tries = 0; reqs && Object.keys(reqs).length; tries++) {
				if (tries > 30)
					die('BatchWriteItem keeps leaving items unprocessed');
				if (tries)
					await new Promise((r) => setTimeout(r, Math.min(1000, 20 * 2 ** tries)));
				const out = await c.send(new BatchWriteItemCommand({ RequestItems: reqs }));
				reqs = out.UnprocessedItems;
			}
		}
	}
	await Promise.all(Array.from({ length: Math.max(1, inflight) }, worker));
}

async function waitActive(c, table) {
	for (let i = 0; i < 300; i++) {
		try {
			const d = await c.send(new DescribeTableCommand({ TableName: table }));
			if (d.Table.TableStatus === 'ACTIVE')
				return;
		} catch (e) {
			if (e.name !== 'ResourceNotFoundException')
				throw e;
		}
		await new Promise((r) => setTimeout(r, 100));
	}
	die(`table ${table} did not become ACTIVE`);
}

async function createTable(c, table) {
	await c.send(new CreateTableCommand({
		TableName: table,
		BillingMode: 'PAY_PER_REQUEST',
		AttributeDefinitions: [{ AttributeName: 'pk', AttributeType: 'S' }],
		KeySchema: [{ AttributeName: 'pk', KeyType: 'HASH' }],
	}));
	await waitActive(c, table);
}

async function deleteTable(c, table) {
	try {
		await c.send(new DeleteTableCommand({ TableName: table }));
	} catch (e) {
		if (e.name !== 'ResourceNotFoundException')
			throw e;
	}
}

function jsonFiles(dir) {
	return readdirSync(dir).filter((f) => f.endsWith('.json')).sort();
}

// An item from a plain JSON file: the file name (less .json) is the key.
function itemFromFile(dir, f) {
	const obj = JSON.parse(readFileSync(join(dir, f), 'utf8'));
	obj.pk = f.slice(0, -5);
	return toAv(obj);
}

async function main() {
	const [cmd, ...a] = process.argv.slice(2);
	if (cmd === 'gen') {
		const [dir, n] = a;
		mkdirSync(dir, { recursive: true });
		for (let i = 0; i < Number(n); i++) {
			const it = makeItem(i);
			const { pk, ...rest } = it;
			writeFileSync(join(dir, `${pk}.json`), JSON.stringify(rest) + '\n');
		}
		return;
	}
	if (cmd === 'cli-batches') {
		const [src, dst] = a;
		mkdirSync(dst, { recursive: true });
		const files = jsonFiles(src);
		const table = a[2] || 'TABLE';
		for (let i = 0, b = 0; i < files.length; i += 25, b++) {
			const reqs = files.slice(i, i + 25).map((f) => ({ PutRequest: { Item: itemFromFile(src, f) } }));
			writeFileSync(join(dst, `batch-${String(b).padStart(5, '0')}.json`),
				JSON.stringify({ [table]: reqs }));
		}
		return;
	}
	const c = client();
	try {
		switch (cmd) {
		case 'create':
			await createTable(c, a[0]);
			break;
		case 'delete':
			await deleteTable(c, a[0]);
			break;
		case 'reset':
			await deleteTable(c, a[0]);
			await createTable(c, a[0]);
			break;
		case 'load': {
			const n = Number(a[1]);
			const inflight = Number(a[2] || 8);
			const chunk = 5000; // generate as we go: 100k items stay small
			for (let i = 0; i < n; i += chunk) {
				const items = [];
				for (let j = i; j < Math.min(n, i + chunk); j++)
					items.push(toAv(makeItem(j)));
				await batchWrite(c, a[0], items, inflight);
			}
			break;
		}
		case 'write-dir': {
			const [table, dir] = a;
			const inflight = Number(a[2] || 4);
			const items = jsonFiles(dir).map((f) => itemFromFile(dir, f));
			await batchWrite(c, table, items, inflight);
			break;
		}
		case 'scan': {
			let items = 0;
			let attrs = 0;
			let start;
			do {
				const out = await c.send(new ScanCommand({ TableName: a[0], ExclusiveStartKey: start }));
				items += out.Count || 0;
				for (const it of out.Items || [])
					attrs += Object.keys(it).length; // touch every item
				start = out.LastEvaluatedKey;
			} while (start);
			process.stdout.write(`items ${items} attrs ${attrs}\n`);
			break;
		}
		case 'count': {
			let n = 0;
			let start;
			do {
				const out = await c.send(new ScanCommand({
					TableName: a[0], Select: 'COUNT', ExclusiveStartKey: start, ConsistentRead: true,
				}));
				n += out.Count || 0;
				start = out.LastEvaluatedKey;
			} while (start);
			process.stdout.write(`${n}\n`);
			break;
		}
		default:
			die('usage: bench-sdk.mjs create|delete|reset|load|gen|cli-batches|scan|write-dir|count ...');
		}
	} catch (e) {
		die(`${cmd} ${a[0] ?? ''}: ${e.name}: ${e.message}`);
	} finally {
		c.destroy();
	}
}

await main();
