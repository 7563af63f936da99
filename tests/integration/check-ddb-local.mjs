// check-ddb-local.mjs: the independent check of test_ddb_local.  The AWS
// SDK for JavaScript v3 (tests/node_modules, pinned by tests/package.json)
// reads the item dynfs's client wrote to dynfs_it_check, and the result
// must equal, attribute for attribute and digit for digit, what dynfs's
// client read back (DYNFS_TEST_DDB_CHECK_FILE, typed JSON).  Run by
// run-with-ddb-local.sh with DYNFS_TEST_DDB_ENDPOINT and dummy keys set.
import { readFileSync } from 'node:fs';
import { isDeepStrictEqual } from 'node:util';
import { DynamoDBClient, GetItemCommand } from '@aws-sdk/client-dynamodb';

const BIG = '12345678901234567890123456789012345678';

function fail(msg) {
	console.error(`check-ddb-local: FAIL: ${msg}`);
	process.exit(1);
}

// The SDK's AttributeValue back to DynamoDB's wire form: binary values
// become base64 again; every other type is already as sent.
function toWire(av) {
	const [type, v] = Object.entries(av).find(([, x]) => x !== undefined);
	switch (type) {
	case 'B':
		return { B: Buffer.from(v).toString('base64') };
	case 'BS':
		return { BS: v.map((b) => Buffer.from(b).toString('base64')) };
	case 'L':
		return { L: v.map(toWire) };
	case 'M':
		return { M: Object.fromEntries(Object.entries(v).map(([k, x]) => [k, toWire(x)])) };
	default:
		return { [type]: v };
	}
}

const endpoint = process.env.DYNFS_TEST_DDB_ENDPOINT;
const file = process.env.DYNFS_TEST_DDB_CHECK_FILE;
if (!endpoint || !file)
	fail('DYNFS_TEST_DDB_ENDPOINT and DYNFS_TEST_DDB_CHECK_FILE must be set');

const ours = JSON.parse(readFileSync(file, 'utf8'));
const client = new DynamoDBClient({
	endpoint,
	region: process.env.AWS_REGION || 'us-east-1',
	credentials: {
		accessKeyId: process.env.AWS_ACCESS_KEY_ID,
		secretAccessKey: process.env.AWS_SECRET_ACCESS_KEY,
	},
	maxAttempts: 1,
});
const out = await client.send(new GetItemCommand({
	TableName: 'dynfs_it_check',
	Key: { pk: { S: 'check' }, sk: { S: 'item' } },
	ConsistentRead: true,
}));
client.destroy();
if (!out.Item)
	fail('no item dynfs_it_check/check/item');

const sdk = Object.fromEntries(Object.entries(out.Item).map(([k, v]) => [k, toWire(v)]));
if (!isDeepStrictEqual(sdk, ours)) {
	console.error('sdk:  ', JSON.stringify(sdk));
	console.error('dynfs:', JSON.stringify(ours));
	fail('the AWS SDK and dynfs read different items');
}
if (sdk.big?.N !== BIG)
	fail(`the 38-digit number came back as ${sdk.big?.N}`);
if (sdk.bin?.B !== 'AAECA/7/')
	fail(`the binary came back as ${sdk.bin?.B}`);
console.error(`check-ddb-local: ok: ${Object.keys(sdk).length} attributes identical (SDK vs dynfs)`);
