#!/usr/bin/env node
// define-apis.mjs: define the standard test APIs and Lambda functions in
// moto (docs/testing-apis.md lists them), with the AWS SDK for JavaScript
// v3.
//
//   node define-apis.mjs --moto URL --backend URL [--region REGION]
//
// --backend is the HTTP back end the HTTP_PROXY integrations point at
// (http://127.0.0.1:PORT).  stdout gets shell assignments, one a line:
//   SHOP_ID=...        REST API "shop" (stages prod, dev)
//   SHOP2_ID=...       the second REST API named "shop" (stage prod)
//   INVENTORY_ID=...   HTTP API "inventory" (stage $default)
//   CHAT_ID=...        WebSocket API "chat" (stage prod)
//   LAMBDA_ROLE_ARN=...
//   FUNCTIONS='echo fail hello'
// and stderr a human summary.  Exit status 1 on any error.
import {
	APIGatewayClient,
	CreateDeploymentCommand,
	CreateResourceCommand,
	CreateRestApiCommand,
	CreateStageCommand,
	GetResourcesCommand,
	PutIntegrationCommand,
	PutIntegrationResponseCommand,
	PutMethodCommand,
	PutMethodResponseCommand,
} from '@aws-sdk/client-api-gateway';
import {
	ApiGatewayV2Client,
	CreateApiCommand,
	CreateIntegrationCommand,
	CreateRouteCommand,
	CreateStageCommand as CreateStageV2Command,
} from '@aws-sdk/client-apigatewayv2';
import { CreateFunctionCommand, LambdaClient } from '@aws-sdk/client-lambda';
import { Sha256 } from '@aws-crypto/sha256-js';
import { SignatureV4 } from '@smithy/signature-v4';

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true';

function die(msg) {
	process.stderr.write(`define-apis: ${msg}\n`);
	process.exit(1);
}

const args = {};
for (let i = 2; i < process.argv.length; i += 2) {
	const k = process.argv[i];
	const v = process.argv[i + 1];
	if (!['--moto', '--backend', '--region'].includes(k) || v === undefined) {
		die('usage: define-apis.mjs --moto URL --backend URL [--region REGION]');
	}
	args[k.slice(2)] = v;
}
if (!args.moto || !args.backend) {
	die('usage: define-apis.mjs --moto URL --backend URL [--region REGION]');
}
const region = args.region || 'us-east-1';
const backend = args.backend.replace(/\/+$/, '');
const cfg = {
	endpoint: args.moto,
	region,
	maxAttempts: 1,
	// moto runs without authentication: any key, one shared account.
	credentials: { accessKeyId: 'AKIADEFINEAPIS000000', secretAccessKey: 'not-checked-by-moto' },
};
const v1 = new APIGatewayClient(cfg);
const v2 = new ApiGatewayV2Client(cfg);
const lambda = new LambdaClient(cfg);

// --- a tiny ZIP writer (one stored file), for the functions' stub code ---
const CRC_TABLE = (() => {
	const t = new Uint32Array(256);
	for (let n = 0; n < 256; n++) {
		let c = n;
		for (let k = 0; k < 8; k++) {
			c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
		}
		t[n] = c >>> 0;
	}
	return t;
})();

function crc32(buf) {
	let c = 0xffffffff;
	for (const b of buf) {
		c = CRC_TABLE[(c ^ b) & 0xff] ^ (c >>> 8);
	}
	return (c ^ 0xffffffff) >>> 0;
}

function zipOne(name, content) {
	const data = Buffer.from(content);
	const fname = Buffer.from(name);
	const crc = crc32(data);
	const local = Buffer.alloc(30);
	local.writeUInt32LE(0x04034b50, 0);
	local.writeUInt16LE(20, 4); // version needed
	local.writeUInt16LE(0, 6); // flags
	local.writeUInt16LE(0, 8); // stored
	local.writeUInt16LE(0, 10); // time
	local.writeUInt16LE(0x21, 12); // date: 1980-01-01
	local.writeUInt32LE(crc, 14);
	local.writeUInt32LE(data.length, 18);
	local.writeUInt32LE(data.length, 22);
	local.writeUInt16LE(fname.length, 26);
	local.writeUInt16LE(0, 28);
	const central = Buffer.alloc(46);
	central.writeUInt32LE(0x02014b50, 0);
	central.writeUInt16LE(0x031e, 4); // made by: Unix, 3.0
	central.writeUInt16LE(20, 6);
	central.writeUInt16LE(0, 8);
	central.writeUInt16LE(0, 10);
	central.writeUInt16LE(0, 12);
	central.writeUInt16LE(0x21, 14);
	central.writeUInt32LE(crc, 16);
	central.writeUInt32LE(data.length, 20);
	central.writeUInt32LE(data.length, 24);
	central.writeUInt16LE(fname.length, 28);
	central.writeUInt32LE(0o100644 * 65536, 38); // external attributes
	central.writeUInt32LE(0, 42); // local header offset
	const localPart = Buffer.concat([local, fname, data]);
	const centralPart = Buffer.concat([central, fname]);
	const end = Buffer.alloc(22);
	end.writeUInt32LE(0x06054b50, 0);
	end.writeUInt16LE(1, 8);
	end.writeUInt16LE(1, 10);
	end.writeUInt32LE(centralPart.length, 12);
	end.writeUInt32LE(localPart.length, 16);
	return Buffer.concat([localPart, centralPart, end]);
}

// --- REST APIs --------------------------------------------------------------
async function restApi(name, description) {
	const api = await v1.send(new CreateRestApiCommand({ name, description }));
	const res = await v1.send(new GetResourcesCommand({ restApiId: api.id }));
	const root = res.items.find((r) => r.path === '/');
	const ids = new Map([['/', root.id]]);
	// resource("/orders/{id}") creates what is missing and returns its id.
	const resource = async (p) => {
		let cur = '';
		let parent = root.id;
		for (const part of p.split('/').filter(Boolean)) {
			cur += `/${part}`;
			if (!ids.has(cur)) {
				const r = await v1.send(new CreateResourceCommand({ restApiId: api.id, parentId: parent, pathPart: part }));
				ids.set(cur, r.id);
			}
			parent = ids.get(cur);
		}
		return parent;
	};
	return { id: api.id, resource };
}

async function method(api, p, httpMethod, authorizationType, pathParams = []) {
	const resourceId = await api.resource(p);
	const requestParameters = Object.fromEntries(pathParams.map((n) => [`method.request.path.${n}`, true]));
	await v1.send(new PutMethodCommand({
		restApiId: api.id, resourceId, httpMethod, authorizationType, requestParameters,
	}));
	return resourceId;
}

// A MOCK method answering `status` with `body` (a JSON text).
async function mock(api, p, httpMethod, authorizationType, status, body) {
	const resourceId = await method(api, p, httpMethod, authorizationType);
	await v1.send(new PutIntegrationCommand({
		restApiId: api.id, resourceId, httpMethod, type: 'MOCK',
		requestTemplates: { 'application/json': `{"statusCode": ${status}}` },
	}));
	await v1.send(new PutMethodResponseCommand({
		restApiId: api.id, resourceId, httpMethod, statusCode: String(status),
		responseParameters: { 'method.response.header.Content-Type': true },
	}));
	await v1.send(new PutIntegrationResponseCommand({
		restApiId: api.id, resourceId, httpMethod, statusCode: String(status), selectionPattern: '',
		responseTemplates: { 'application/json': body },
		responseParameters: { 'method.response.header.Content-Type': "'application/json'" },
	}));
}

// An HTTP_PROXY method to `uri` (with {name} path parameters).
async function httpProxy(api, p, httpMethod, authorizationType, uri) {
	const pathParams = [...p.matchAll(/\{([^}+]+)\+?\}/g)].map((m) => m[1]);
	const resourceId = await method(api, p, httpMethod, authorizationType, pathParams);
	await v1.send(new PutIntegrationCommand({
		restApiId: api.id, resourceId, httpMethod, type: 'HTTP_PROXY', integrationHttpMethod: httpMethod,
		uri, timeoutInMillis: 29000,
		requestParameters: Object.fromEntries(pathParams.map((n) => [`integration.request.path.${n}`, `method.request.path.${n}`])),
	}));
}

async function lambdaProxy(api, p, httpMethod, fnArn) {
	const resourceId = await method(api, p, httpMethod, 'NONE');
	await v1.send(new PutIntegrationCommand({
		restApiId: api.id, resourceId, httpMethod, type: 'AWS_PROXY', integrationHttpMethod: 'POST',
		uri: `arn:aws:apigateway:${region}:lambda:path/2015-03-31/functions/${fnArn}/invocations`,
	}));
}

async function deploy(api, stages) {
	const d = await v1.send(new CreateDeploymentCommand({ restApiId: api.id, stageName: stages[0] }));
	for (const s of stages.slice(1)) {
		await v1.send(new CreateStageCommand({ restApiId: api.id, stageName: s, deploymentId: d.id }));
	}
}

// --- Lambda -------------------------------------------------------------------
// IAM has no SDK client in tests/node_modules: its Query API is called
// directly, signed with @smithy/signature-v4 (moto picks the service from
// the credential scope).
async function iamCall(params) {
	const url = new URL(args.moto);
	const body = new URLSearchParams({ ...params, Version: '2010-05-08' }).toString();
	const signer = new SignatureV4({ credentials: cfg.credentials, region, service: 'iam', sha256: Sha256 });
	const req = await signer.sign({
		method: 'POST', protocol: url.protocol, hostname: url.hostname, port: Number(url.port) || undefined,
		path: '/', query: {},
		headers: { host: url.host, 'content-type': 'application/x-www-form-urlencoded; charset=utf-8' },
		body,
	});
	const res = await fetch(new URL('/', url), { method: 'POST', headers: req.headers, body });
	return { status: res.status, text: await res.text() };
}

async function role() {
	const RoleName = 'dynfs-test-lambda';
	let r = await iamCall({ Action: 'GetRole', RoleName });
	if (r.status !== 200) {
		r = await iamCall({
			Action: 'CreateRole',
			RoleName,
			AssumeRolePolicyDocument: JSON.stringify({
				Version: '2012-10-17',
				Statement: [{ Effect: 'Allow', Principal: { Service: 'lambda.amazonaws.com' }, Action: 'sts:AssumeRole' }],
			}),
		});
	}
	const m = /<Arn>([^<]+)<\/Arn>/.exec(r.text);
	if (r.status !== 200 || !m) {
		throw new Error(`iam CreateRole: HTTP ${r.status}: ${r.text.slice(0, 300)}`);
	}
	return m[1];
}

async function createFunction(name, roleArn, description) {
	try {
		const out = await lambda.send(new CreateFunctionCommand({
			FunctionName: name,
			Runtime: 'nodejs20.x',
			Handler: 'index.handler',
			Role: roleArn,
			Description: description,
			Timeout: 3,
			MemorySize: 128,
			// The code that runs is tests/apigw-emu/functions/<name>.mjs;
			// this stub only satisfies moto.
			Code: { ZipFile: zipOne('index.mjs', `// stub: the emulator runs tests/apigw-emu/functions/${name}.mjs\nexport const handler = async (event) => event;\n`) },
		}));
		return out.FunctionArn;
	} catch (e) {
		if (e.name === 'ResourceConflictException') {
			return `arn:aws:lambda:${region}:123456789012:function:${name}`;
		}
		throw e;
	}
}

async function main() {
	const out = {};
	const roleArn = await role();
	out.LAMBDA_ROLE_ARN = roleArn;
	const fns = {};
	fns.echo = await createFunction('echo', roleArn, 'returns its event');
	fns.fail = await createFunction('fail', roleArn, 'always throws');
	fns.hello = await createFunction('hello', roleArn, 'returns a greeting');
	out.FUNCTIONS = 'echo fail hello';

	// REST API "shop", stages prod and dev.
	const shop = await restApi('shop', 'the dynfs test shop');
	await mock(shop, '/orders', 'GET', 'NONE', 200,
		'{"orders": [{"id": "1", "item": "book"}, {"id": "2", "item": "pen"}]}');
	await httpProxy(shop, '/orders/{id}', 'GET', 'AWS_IAM', `${backend}/orders/{id}`);
	await httpProxy(shop, '/orders/{id}', 'POST', 'NONE', `${backend}/orders/{id}`);
	await httpProxy(shop, '/search', 'GET', 'NONE', `${backend}/search`);
	await mock(shop, '/missing', 'GET', 'NONE', 404, '{"message": "no such thing"}');
	await mock(shop, '/boom', 'GET', 'NONE', 500, '{"message": "boom"}');
	await mock(shop, '/private', 'GET', 'AWS_IAM', 200, '{"secret": "only for signed callers"}');
	await deploy(shop, ['prod', 'dev']);
	out.SHOP_ID = shop.id;

	// A second REST API named "shop" (duplicate names), stage prod.
	const shop2 = await restApi('shop', 'another API with the same name');
	await mock(shop2, '/ping', 'GET', 'NONE', 200, '{"pong": true}');
	await lambdaProxy(shop2, '/hello', 'GET', fns.hello);
	await deploy(shop2, ['prod']);
	out.SHOP2_ID = shop2.id;

	// HTTP API "inventory", stage $default.
	const inv = await v2.send(new CreateApiCommand({ Name: 'inventory', ProtocolType: 'HTTP' }));
	const route = async (RouteKey, uri, AuthorizationType = 'NONE') => {
		const i = await v2.send(new CreateIntegrationCommand({
			ApiId: inv.ApiId, IntegrationType: 'HTTP_PROXY', IntegrationMethod: 'ANY',
			IntegrationUri: uri, PayloadFormatVersion: '1.0', TimeoutInMillis: 30000,
		}));
		await v2.send(new CreateRouteCommand({
			ApiId: inv.ApiId, RouteKey, AuthorizationType, Target: `integrations/${i.IntegrationId}`,
		}));
	};
	await route('GET /items/{id}', `${backend}/items/{id}`);
	await route('ANY /things/{proxy+}', `${backend}/things/{proxy}`);
	await route('GET /secure', `${backend}/secure`, 'AWS_IAM');
	await route('$default', `${backend}/default`);
	await v2.send(new CreateStageV2Command({ ApiId: inv.ApiId, StageName: '$default', AutoDeploy: true }));
	out.INVENTORY_ID = inv.ApiId;

	// WebSocket API "chat", stage prod.
	const chat = await v2.send(new CreateApiCommand({
		Name: 'chat', ProtocolType: 'WEBSOCKET', RouteSelectionExpression: '$request.body.action',
	}));
	for (const [RouteKey, AuthorizationType] of [['$connect', 'AWS_IAM'], ['$disconnect', 'NONE'], ['$default', 'NONE']]) {
		const i = await v2.send(new CreateIntegrationCommand({ ApiId: chat.ApiId, IntegrationType: 'MOCK' }));
		await v2.send(new CreateRouteCommand({
			ApiId: chat.ApiId, RouteKey, AuthorizationType, Target: `integrations/${i.IntegrationId}`,
		}));
	}
	await v2.send(new CreateStageV2Command({ ApiId: chat.ApiId, StageName: 'prod' }));
	out.CHAT_ID = chat.ApiId;

	for (const [k, v] of Object.entries(out)) {
		process.stdout.write(`${k}='${v}'\n`);
	}
	const host = (id) => `${id}.execute-api.${region}.amazonaws.com`;
	process.stderr.write([
		'define-apis: created in moto:',
		`  REST API shop       ${shop.id}  https://${host(shop.id)}/{prod,dev}/orders ...`,
		`  REST API shop (2nd) ${shop2.id}  https://${host(shop2.id)}/prod/{ping,hello}`,
		`  HTTP API inventory  ${inv.ApiId}  https://${host(inv.ApiId)}/items/{id} ...`,
		`  WebSocket API chat  ${chat.ApiId}  wss://${host(chat.ApiId)}/prod`,
		`  Lambda functions    ${out.FUNCTIONS}`,
		'',
	].join('\n'));
}

main().catch((e) => die(`${e.name || 'Error'}: ${e.message}`));
