// defs.mjs: the API definitions, read from moto's API Gateway management
// APIs (v1 for REST APIs, v2 for HTTP and WebSocket APIs) with the AWS SDK
// for JavaScript v3, normalized and cached.
//
// A definition is cached for EMU_DEF_TTL_MS (default 1000 ms); a request
// that finds no API, stage or route reloads its API once more (see
// Definitions.lookup), so a test may define or change APIs in moto at any
// time after the emulator started.
import {
	APIGatewayClient,
	GetResourcesCommand,
	GetRestApiCommand,
	GetStagesCommand,
} from '@aws-sdk/client-api-gateway';
import {
	ApiGatewayV2Client,
	GetApiCommand,
	GetIntegrationsCommand,
	GetRoutesCommand,
	GetStagesCommand as GetStagesV2Command,
} from '@aws-sdk/client-apigatewayv2';

const TTL_MS = Number(process.env.EMU_DEF_TTL_MS || 1000);

function notFound(e) {
	return e && (e.name === 'NotFoundException' || e.$metadata?.httpStatusCode === 404);
}

// "/orders/{id}" -> ["orders", "{id}"]
export function splitPath(p) {
	return (p || '').split('/').filter((s) => s !== '');
}

async function loadRest(c, id) {
	const api = await c.send(new GetRestApiCommand({ restApiId: id }));
	const resources = [];
	let position;
	do {
		const page = await c.send(new GetResourcesCommand({
			restApiId: id, embed: ['methods'], limit: 500, position,
		}));
		for (const r of page.items || []) {
			const methods = {};
			for (const [m, def] of Object.entries(r.resourceMethods || {})) {
				const i = def.methodIntegration || null;
				methods[m.toUpperCase()] = {
					authorizationType: def.authorizationType || 'NONE',
					integration: i && {
						type: i.type,
						uri: i.uri,
						httpMethod: i.httpMethod,
						requestTemplates: i.requestTemplates || {},
						integrationResponses: i.integrationResponses || {},
						timeoutInMillis: i.timeoutInMillis || 29000,
						requestParameters: i.requestParameters || {},
					},
				};
			}
			resources.push({ id: r.id, path: r.path, parts: splitPath(r.path), methods });
		}
		position = page.position;
	} while (position);
	const stages = new Map();
	const st = await c.send(new GetStagesCommand({ restApiId: id }));
	for (const s of st.item || []) {
		stages.set(s.stageName, { variables: s.variables || {} });
	}
	return { kind: 'REST', id, name: api.name, resources, stages };
}

async function all(c, Cmd, input) {
	const items = [];
	let NextToken;
	do {
		const page = await c.send(new Cmd({ ...input, NextToken }));
		items.push(...(page.Items || []));
		NextToken = page.NextToken;
	} while (NextToken);
	return items;
}

async function loadV2(c, id) {
	const api = await c.send(new GetApiCommand({ ApiId: id }));
	const integrations = new Map();
	for (const i of await all(c, GetIntegrationsCommand, { ApiId: id })) {
		integrations.set(i.IntegrationId, {
			type: i.IntegrationType,
			uri: i.IntegrationUri,
			httpMethod: i.IntegrationMethod || 'ANY',
			payloadFormatVersion: i.PayloadFormatVersion || '1.0',
			timeoutInMillis: i.TimeoutInMillis || 30000,
			requestTemplates: i.RequestTemplates || {},
		});
	}
	const routes = [];
	for (const r of await all(c, GetRoutesCommand, { ApiId: id })) {
		const target = /^integrations\/(.+)$/.exec(r.Target || '');
		const route = {
			key: r.RouteKey,
			authorizationType: r.AuthorizationType || 'NONE',
			integration: target ? integrations.get(target[1]) || null : null,
		};
		const m = /^(\S+) (\/.*)$/.exec(r.RouteKey || '');
		if (m) {
			route.method = m[1].toUpperCase();
			route.parts = splitPath(m[2]);
		}
		routes.push(route);
	}
	const stages = new Map();
	for (const s of await all(c, GetStagesV2Command, { ApiId: id })) {
		stages.set(s.StageName, { variables: s.StageVariables || {} });
	}
	return {
		kind: api.ProtocolType === 'WEBSOCKET' ? 'WEBSOCKET' : 'HTTP',
		id,
		name: api.Name,
		routeSelectionExpression: api.RouteSelectionExpression || '$request.body.action',
		routes,
		stages,
	};
}

export class Definitions {
	constructor({ endpoint, credentials }) {
		this.endpoint = endpoint;
		this.credentials = credentials;
		this.clients = new Map();
		this.cache = new Map(); // "region/id" -> { def, at }
	}

	client(region) {
		let c = this.clients.get(region);
		if (!c) {
			const cfg = { endpoint: this.endpoint, region, credentials: this.credentials, maxAttempts: 1 };
			c = { v1: new APIGatewayClient(cfg), v2: new ApiGatewayV2Client(cfg) };
			this.clients.set(region, c);
		}
		return c;
	}

	// The definition of API `id` in `region`, or null when moto knows no
	// such API.  force: reload even when the cached one is fresh.
	async get(region, id, force = false) {
		const key = `${region}/${id}`;
		const hit = this.cache.get(key);
		if (hit && !force && Date.now() - hit.at < TTL_MS) {
			return { def: hit.def, fresh: false };
		}
		const c = this.client(region);
		let def = null;
		// moto's v1 ids have 10 characters and v2 ids 8; try the likely
		// one first.
		const order = id.length === 10 ? ['v1', 'v2'] : ['v2', 'v1'];
		for (const v of order) {
			try {
				def = v === 'v1' ? await loadRest(c.v1, id) : await loadV2(c.v2, id);
				break;
			} catch (e) {
				if (!notFound(e)) {
					throw e;
				}
			}
		}
		this.cache.set(key, { def, at: Date.now() });
		return { def, fresh: true };
	}

	// find(def) -> a match or null.  Looks in the cached definition, and
	// when that finds nothing (and was not just loaded), reloads once.
	async lookup(region, id, find) {
		let { def, fresh } = await this.get(region, id);
		let found = def ? find(def) : null;
		if (!found && !fresh) {
			({ def } = await this.get(region, id, true));
			found = def ? find(def) : null;
		}
		return { def, found };
	}
}
