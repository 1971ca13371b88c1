-- EMQ 2.x's tables for emq_auth_mysql (MySQL 5.7+ / MariaDB 10.2+), as mqttd reads them with
-- the default auth.mysql.auth_query, super_query and acl_query.
--   mqtt_user.password  the password or its hash (auth.mysql.password_hash); salt when the
--                       hash uses one (select password, salt ... in auth_query)
--   mqtt_acl.allow      1 allow, 0 deny
--   mqtt_acl.access     1 subscribe, 2 publish, 3 both
--   mqtt_acl.topic      a topic filter (%u / %c levels are the client's username / client id)
--                       or "eq <topic>" for exactly that topic
--   mqtt_acl.username   '$all' for every client; otherwise ipaddr, username and clientid
--                       that are not NULL must all match
CREATE TABLE IF NOT EXISTS `mqtt_user` (
  `id` int(11) unsigned NOT NULL AUTO_INCREMENT,
  `username` varchar(100) DEFAULT NULL,
  `password` varchar(128) DEFAULT NULL,
  `salt` varchar(64) DEFAULT NULL,
  `is_superuser` tinyint(1) DEFAULT 0,
  `created` datetime DEFAULT NULL,
  PRIMARY KEY (`id`),
  UNIQUE KEY `mqtt_username` (`username`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE IF NOT EXISTS `mqtt_acl` (
  `id` int(11) unsigned NOT NULL AUTO_INCREMENT,
  `allow` int(1) DEFAULT NULL COMMENT '0: deny, 1: allow',
  `ipaddr` varchar(60) DEFAULT NULL COMMENT 'IpAddress',
  `username` varchar(100) DEFAULT NULL COMMENT 'Username',
  `clientid` varchar(100) DEFAULT NULL COMMENT 'ClientId',
  `access` int(2) NOT NULL COMMENT '1: subscribe, 2: publish, 3: pubsub',
  `topic` varchar(100) NOT NULL DEFAULT '' COMMENT 'Topic Filter',
  PRIMARY KEY (`id`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
