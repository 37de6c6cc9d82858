#!/usr/bin/env node
import { createMemoryDatastore } from '@calyx/datastore-memory';
import { datastoreWalkthrough } from './datastore-walkthrough.js';

const store = createMemoryDatastore();
try {
  console.log('Calyx demo — datastore walkthrough over the embedded in-memory store\n');
  const { events } = await datastoreWalkthrough(store, (l) => console.log(l));
  console.log(`\nDone: ${events} watch events.`);
} finally {
  await store.close();
}
