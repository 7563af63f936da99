#!/usr/bin/env node
// contrib/demo-data/seed.cjs ENDPOINT: create the demo tables (tables.json)
// in DynamoDB Local and write their items (DynamoDB JSON; B and BS values
// are base64).  Idempotent: existing tables are kept, items overwritten.
// Uses the AWS SDK for JavaScript v3 from tests/node_modules (npm ci
// --prefix tests).  Credentials and region come from the environment.
'use strict';

const fs = require('fs');
const path = require('path');
const { createRequire } = require('module');

const root = path.resolve(__dirname, '..', '..');
const req = createRequire(path.join(root, 'tests', 'package.json'));
const {
	DynamoDBClient, CreateTableCommand, DescribeTableCommand,
	BatchWriteItemCommand, ResourceInUseException,
} = req('@aws-sdk/client-dynamodb');

const endpoint = process.argv[2];
if (!endpoint || !/^http:\/\/127\.0\.0\.1:\d+$/.test(endpoint)) {
	console.error('usage: seed.cjs http://127.0.0.1:PORT');
	process.exit(2);
}

const client = new DynamoDBClient({
	endpoint,
	region: process.env.AWS_REGION || 'us-east-1',
	maxAttempts: 3,
});

// DynamoDB JSON as stored in the files -> SDK values (binary as bytes).
function decode(av) {
	if ('B' in av) return { B: Buffer.from(av.B, 'base64') };
	if ('BS' in av) return { BS: av.BS.map((b) => Buffer.from(b, 'base64')) };
	if ('M' in av) {
		const m = {};
		for (const [k, v] of Object.entries(av.M)) m[k] = decode(v);
		return { M: m };
	}
	if ('L' in av) return { L: av.L.map(decode) };
	return av;
}

function decodeItem(item) {
	const out = {};
	for (const [k, v] of Object.entries(item)) out[k] = decode(v);
	return out;
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function ensureTable(def) {
	const { items, ...params } = def;
	try {
		await client.send(new CreateTableCommand(params));
		console.log(`created table ${def.TableName}`);
	} catch (e) {
		if (!(e instanceof ResourceInUseException) && e.name !== 'ResourceInUseException')
			throw e;
		console.log(`table ${def.TableName} exists`);
	}
	for (let i = 0; i < 100; i++) {
		const d = await client.send(new DescribeTableCommand({ TableName: def.TableName }));
		if (d.Table.TableStatus === 'ACTIVE') return;
		await sleep(100);
	}
	throw new Error(`table ${def.TableName} did not become ACTIVE`);
}

async function writeItems(table, items) {
	for (let i = 0; i < items.length; i += 25) {
		let pending = {
			[table]: items.slice(i, i + 25).map((it) => ({ PutRequest: { Item: decodeItem(it) } })),
		};
		for (let tries = 0; Object.keys(pending).length > 0; tries++) {
			if (tries > 20) throw new Error(`${table}: unprocessed items remain`);
			const r = await client.send(new BatchWriteItemCommand({ RequestItems: pending }));
			pending = r.UnprocessedItems || {};
			if (Object.keys(pending).length > 0) await sleep(50 * (tries + 1));
		}
	}
	console.log(`wrote ${items.length} items to ${table}`);
}

async function main() {
	const defs = JSON.parse(fs.readFileSync(path.join(__dirname, 'tables.json'), 'utf8'));
	for (const def of defs) {
		await ensureTable(def);
		const items = JSON.parse(fs.readFileSync(path.join(__dirname, def.items), 'utf8'));
		await writeItems(def.TableName, items);
	}
	// The APIs and functions of the demo will be seeded here once dynfs
	// mounts API Gateway and Lambda.
}

main().catch((e) => {
	console.error(`seed.cjs: ${e.name || 'Error'}: ${e.message}`);
	process.exit(1);
});
