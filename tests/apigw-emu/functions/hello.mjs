// hello: a greeting for event.name (default "world").  Called through an
// API Gateway proxy integration (the event has an httpMethod or a
// requestContext.http), it answers in the proxy response format instead.
export async function handler(event) {
	const q = event?.queryStringParameters || {};
	const name = event?.name || q.name || 'world';
	console.log(`hello: greeting ${name}`);
	const greeting = { greeting: `Hello, ${name}!` };
	if (event && (event.httpMethod || event.requestContext?.http)) {
		return {
			statusCode: 200,
			headers: { 'Content-Type': 'application/json', 'x-function': 'hello' },
			body: JSON.stringify(greeting),
		};
	}
	return greeting;
}
