define("swarm-ui/app", []); // ember-app-js
