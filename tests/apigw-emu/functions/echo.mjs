// echo: returns the event it was given (and logs one line).
export async function handler(event, context) {
	console.log('echo', context.functionName, JSON.stringify(event));
	return event;
}
