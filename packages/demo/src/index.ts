export {
  Cluster,
  type ClusterOptions,
  type ClusterVm,
  NETWORK_ID,
  PRIVATE_SUBNET,
  PUBLIC_SUBNET,
  V6_SUBNET,
  DEPLOYMENT_AS,
  EDGE_AS,
  OPEN_GROUP,
} from './cluster.js';
export { datastoreWalkthrough } from './datastore-walkthrough.js';
